"""What a run shows: plain lines when stderr is not a terminal, a rich live view when it is, --quiet."""
import io
from types import SimpleNamespace

from rich.console import Console

from harness import cli
from harness.running.progress import Progress

ENV = {"cpu": "Test CPU", "threads": 2, "profile": "smoke"}


def cell(name):
    return SimpleNamespace(label=name, key=name)


def ok_row(acc):
    return {"status": "ok", "cell": "c", "metrics": {"test_accuracy": acc}, "stability": {"flag": "stable"}}


def drive(progress):
    progress.header("/tmp/run", ENV)
    progress.plan([cell("a"), cell("b")])
    for name, acc in (("a", 0.9), ("b", 0.95)):
        progress.begin(cell(name))
        progress.update(1.0, {"epoch": 0, "epochs": 2, "steps_per_epoch": 10, "step": 3, "loss": 0.5})
        progress.end(cell(name), ok_row(acc))
    return progress.summary([ok_row(0.9), ok_row(0.95)], "/tmp/run/results.jsonl")


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    assert drive(Progress(2, live=False, stream=out)) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("dlrosetta: 2 processes -> /tmp/run/results.jsonl (Test CPU, 2 threads")
    assert lines[1].startswith("[1/2] ok      a  ") and lines[1].endswith("acc 90.00%")
    assert lines[2].startswith("[2/2] ok      b  ") and lines[2].endswith("acc 95.00%")
    assert lines[3].startswith("dlrosetta: 2 processes in ") and "2 ok" in lines[3]
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()  # CI logs stay plain text


def test_live_view_on_a_terminal_keeps_the_finished_lines():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    progress = Progress(2, live=True, stream=out, console=console, cost=lambda c: {"a": 30.0, "b": 10.0}[c.label])
    assert drive(progress) == 0
    text = out.getvalue()
    assert "[1/2] ok      a" in text and "[2/2] ok      b" in text and "dlrosetta: 2 processes in" in text
    assert "done · 1 running · 1 left" in text or "0 done · 1 running" in text  # the live counts were drawn
    assert "epoch 1/2 step 3 loss 0.5" in text  # and the running cell's state
    assert progress._view is None  # stopped before the summary


def test_quiet_prints_only_header_and_summary():
    out = io.StringIO()
    drive(Progress(2, live=True, stream=out, quiet=True))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("dlrosetta: 2 processes ->") and " in " in lines[1]


def test_quiet_flag_on_a_run(dummy_impls, capsys):
    out = dummy_impls / "run"
    assert cli.main(["run", "--tasks", "x2_descent", "--frameworks", "numpy", "--profile", "smoke",
                     "--variants", "ok", "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "[1/1]" not in err and "dlrosetta: 1 processes ->" in err and "1 ok" in err
