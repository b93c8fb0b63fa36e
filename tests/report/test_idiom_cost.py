"""Idiom cost in the MNIST sections, from made-up rows: each framework's primary variant (its file's first)
against its fastest variant, both ranked against the other frameworks, a best-of-each-framework chart beside
the step-time chart, and rows timed on a busy machine or in another precision left out."""
from pathlib import Path

import pytest

from reports.data import Run
from reports.per_task import mnist_section


def row(framework, variant, step_ms, flag="stable", params=None):
    return {"task": "mnist_mlp", "framework": framework, "variant": variant, "dataset": "mnist", "status": "ok",
            "cell": f"mnist_mlp/{framework}/{variant}/cpu/mnist", "device": "cpu", "params": params,
            "metrics": {"test_accuracy": 0.97}, "timing": {"step_s": {"median": step_ms / 1e3}},
            "memory": {}, "stability": {"flag": flag}}


def test_idiom_cost_sets_each_primary_against_its_best_variant():
    rows = [row("pytorch", "eager", 3.0), row("pytorch", "compile", 2.0),
            row("pytorch", "dataloader", 1.0, flag="disturbed"),  # a busy machine's time never ranks
            row("pytorch", "dataloader", 0.5, params={"precision": "bf16"}),  # nor another precision's
            row("jax", "jit", 2.5),
            row("keras-jax", "sequential", 9.0), row("keras-jax", "functional", 8.0)]
    body = mnist_section(Run(Path("run"), {}, rows), "mnist_mlp")
    (idiom,) = body["extra_tables"]
    by = {r["framework"]: r for r in idiom.rows}
    assert (by["pytorch"]["primary"], by["pytorch"]["best"]) == ("eager", "compile")
    assert by["pytorch"]["idiom_cost"] == pytest.approx(1.5)
    assert by["jax"]["best"] == "jit" and by["jax"]["idiom_cost"] == pytest.approx(1.0)
    assert by["jax"]["primary_vs_fastest"] == pytest.approx(1.0)  # the fastest primary: 2.5 ms
    assert by["pytorch"]["primary_vs_fastest"] == pytest.approx(3.0 / 2.5)
    assert by["pytorch"]["best_vs_fastest"] == pytest.approx(1.0)  # compile's 2 ms is the fastest best
    assert by["keras-jax"]["best_vs_fastest"] == pytest.approx(4.0)
    titles = [c.title for c in body["groups"][0]["charts"]]
    assert titles.index("Steady-state step time — best variant of each framework") == 1
    note = body["groups"][0]["note"]
    assert "Best variant of each framework: fastest pytorch/compile" in note and "keras-jax/functional ×4.0" in note


def test_no_idiom_cost_table_when_every_primary_is_its_own_best():
    body = mnist_section(Run(Path("run"), {}, [row("pytorch", "eager", 2.0), row("pytorch", "compile", 3.0),
                                              row("jax", "jit", 2.5)]), "mnist_mlp")
    assert body["extra_tables"] == []
    assert all("best variant" not in c.title for c in body["groups"][0]["charts"])
