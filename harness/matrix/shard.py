"""`--shard k/n`: a deterministic, cost-balanced split of the matrix over n machines.

Each cell's cost is estimated from its task and profile (`COST_S`, seconds on the 2-core reference
machine, times the number of processes per cell), or taken from an earlier run's measured wall times
(`--costs RUN_DIR`). Cells are dealt longest-processing-time first (Graham's LPT rule): the costliest
cell goes to the shard with the least work so far, ties to the lower shard. The n shards together hold
every cell exactly once, and every machine computes the same split from the same selection.
"""
from __future__ import annotations

import json
from pathlib import Path

from harness.matrix.registry import Cell
from harness.matrix.tasks import TASKS, SpecError

# Rough wall seconds of one process per task kind and profile (full: trained to target; the secondary
# variants' 100-step runs cost about a quick cell), from the README's measured bench on 2 cores.
COST_S = {
    "smoke": {"x2": 2.0, "linreg": 4.0, "mnist_mlp": 8.0, "mnist_cnn": 10.0},
    "quick": {"x2": 2.0, "linreg": 5.0, "mnist_mlp": 12.0, "mnist_cnn": 20.0},
    "full": {"x2": 2.0, "linreg": 6.0, "mnist_mlp": 45.0, "mnist_cnn": 120.0},
}
SECONDARY_COST_S = {"mnist_mlp": 15.0, "mnist_cnn": 30.0}


def parse(text: str) -> tuple[int, int]:
    """'k/n' -> (k, n) with 1 <= k <= n; anything else is a one-line usage error."""
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise SpecError(f"--shard expects k/n with 1 <= k <= n (e.g. 2/4), got {text!r}") from None
    if not 1 <= k <= n:
        raise SpecError(f"--shard expects k/n with 1 <= k <= n (e.g. 2/4), got {text!r}")
    return k, n


def estimated_cost(cell: Cell, profile: str, measured: dict | None = None) -> float:
    if measured and cell.key in measured:
        return measured[cell.key]
    kind = TASKS[cell.task].kind
    name = cell.task if kind == "mnist" else kind
    if cell.short_schedule and name in SECONDARY_COST_S:
        return SECONDARY_COST_S[name]
    return COST_S.get(profile, COST_S["full"]).get(name, 10.0)


def measured_costs(run_dir) -> dict[str, float]:
    """cell -> wall seconds of all its processes in an earlier run (results.jsonl's cell_wall_s)."""
    path = Path(run_dir) / "results.jsonl"
    if not path.is_file():
        raise SpecError(f"--costs {run_dir}: not a run dir (no results.jsonl)")
    costs: dict[str, float] = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
            wall = float(row["timing"]["cell_wall_s"])
        except (ValueError, KeyError, TypeError):
            continue
        costs[row["cell"]] = costs.get(row["cell"], 0.0) + wall
    return costs


def split(cells: list[Cell], n: int, profile: str, repeat: int = 1, measured: dict | None = None) -> list[list]:
    """The n shards (each a list of cells in matrix order) and their estimated seconds."""
    cost = {c.key: estimated_cost(c, profile, measured) * (1 if measured and c.key in measured else repeat)
            for c in cells}
    order = sorted(range(len(cells)), key=lambda i: (-cost[cells[i].key], cells[i].key))
    loads, members = [0.0] * n, [[] for _ in range(n)]
    for i in order:
        target = min(range(n), key=lambda s: (loads[s], s))
        loads[target] += cost[cells[i].key]
        members[target].append(i)
    return [([cells[i] for i in sorted(m)], loads[s]) for s, m in enumerate(members)]


def select_shard(cells: list[Cell], shard: str | None, profile: str, repeat: int = 1,
                 costs_dir=None) -> tuple[list[Cell], float | None]:
    """The cells of shard k/n and its estimated seconds (all cells and None without --shard)."""
    if not shard:
        return cells, None
    k, n = parse(shard)
    measured = measured_costs(costs_dir) if costs_dir else None
    mine, seconds = split(cells, n, profile, repeat, measured)[k - 1]
    return mine, seconds
