"""`tuned…` variants (issue 17): secondary (never ranked as a column's idiom) but trained to target under the
full profile like the primary, so their time to target counts; float32 only."""
from pathlib import Path

from harness.matrix import registry, shard
from harness.running.runner import Job, RunOptions, job_spec

THREE_IDIOMS = '''VARIANTS = {"plain": "the idiom", "other": "another idiom", "tuned_fast": "the same model, made fast"}
'''


def test_a_tuned_variant_trains_in_full_and_in_float32_only(impl_package):
    impl_package("tuned_impls", "mnist_mlp", THREE_IDIOMS)
    cells = {c.variant: c for c in registry.enumerate_cells(["mnist_mlp"], ["numpy"], profile="full")}
    assert [cells[v].secondary for v in ("plain", "other", "tuned_fast")] == [False, True, True]
    assert [cells[v].short_schedule for v in ("plain", "other", "tuned_fast")] == [False, True, False]
    opts = RunOptions(out=Path("unused"), profile="full")
    specs = {v: job_spec(Job(c), opts) for v, c in cells.items()}
    assert specs["tuned_fast"].epochs == specs["plain"].epochs == 10 and specs["other"].epochs == 1
    assert specs["tuned_fast"].target_accuracy == specs["plain"].target_accuracy == 0.975
    assert specs["other"].target_accuracy is None
    # the scheduler's estimate follows: a tuned cell costs what a primary does
    assert shard.estimated_cost(cells["tuned_fast"], "full") == shard.estimated_cost(cells["plain"], "full")
    assert shard.estimated_cost(cells["other"], "full") < shard.estimated_cost(cells["plain"], "full")
    bf16 = (("precision", "bf16"),)
    assert registry.applicability("mnist_mlp", "numpy", "tuned_fast", bf16) == registry.TUNED_FP32_ONLY
    for params in ((), (("precision", "fp32"),)):  # in float32, what holds for the primary holds for it
        assert registry.applicability("mnist_mlp", "numpy", "tuned_fast", params) == \
            registry.applicability("mnist_mlp", "numpy", "plain", params)
    assert registry.applicability("mnist_mlp", "numpy", "plain", bf16) != registry.TUNED_FP32_ONLY
    assert not registry.is_tuned("compile") and registry.is_tuned("tuned") and not registry.is_tuned(None)
