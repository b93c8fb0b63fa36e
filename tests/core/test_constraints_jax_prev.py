"""constraints-jax-prev.txt (`tox -e jax-prev`) is constraints.txt with only the jax/jaxlib pins changed, so the
two jax columns differ in jax alone and not in numpy, flax or anything else."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pins(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return dict(line.split("==", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_only_jax_and_jaxlib_differ():
    now, prev = pins("constraints.txt"), pins("constraints-jax-prev.txt")
    assert set(now) == set(prev)
    assert {k for k in now if now[k] != prev[k]} == {"jax", "jaxlib"}
    assert prev["jax"] == prev["jaxlib"]


def test_jax_prev_env_is_in_no_label():
    text = (ROOT / "tox.ini").read_text()
    assert "[testenv:jax-prev]" in text and "constraints-jax-prev.txt" in text
    labels = text.split("labels =", 1)[1].split("\n\n", 1)[0].split("skip_missing", 1)[0]
    assert "jax-prev" not in labels
