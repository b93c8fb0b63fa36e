"""The harness's own share of the cells' wall time, split from the frameworks' phases and the checks."""
import pytest

from reports.overhead import harness_overhead, overhead_text


def row(wall, import_s=1.0, build_s=0.5, train=6.0, eval_s=0.5, checks=1.0):
    return {"timing": {"cell_wall_s": wall, "import_s": import_s, "build_s": build_s, "train_wall_s": train,
                       "eval_s": eval_s, "checks_s": checks}}


def test_the_rest_of_the_wall_time_is_the_harness():
    o = harness_overhead([row(10.0), row(10.0, train=7.0), {"timing": {"cell_wall_s": 99.0}}])  # no phases: left out
    assert o["cells"] == 2 and o["wall_s"] == 20.0
    assert o["framework_s"] == pytest.approx(17.0) and o["checks_s"] == pytest.approx(2.0)
    assert o["harness_pct"] == pytest.approx(5.0) and o["checks_pct"] == pytest.approx(10.0)
    assert overhead_text([row(10.0)]).startswith("10.0 % of the cells' wall time (1 of 10 s over 1 cell processes")


def test_no_phase_timers_no_figure():
    assert harness_overhead([{"timing": {"cell_wall_s": 3.0, "import_s": 1.0}}]) is None and overhead_text([]) is None
