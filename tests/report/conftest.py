"""Fixtures for the report tests: a real smoke run (tests/report/fixtures/run, made by make_fixture.py),
copied, plus one row a real run cannot produce on demand (an error string that is HTML and script)."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
from report_helpers import FIXTURE, HOSTILE, read_jsonl, write_jsonl


@pytest.fixture(scope="session")
def fixture_rows() -> list[dict]:
    return read_jsonl(FIXTURE / "results.jsonl")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, fixture_rows) -> Path:
    """The fixture run (results.jsonl, environment.json, parity.jsonl) plus one failed row whose error and
    variant are HTML/JS, to check escaping."""
    out = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(FIXTURE, out)
    rows = copy.deepcopy(fixture_rows)
    template = next(r for r in rows if r["task"] == "mnist_mlp" and r["status"] == "ok")
    evil = copy.deepcopy(template)
    evil.update(cell="mnist_mlp/pytorch/<b>evil</b>/cpu/mnist", variant="<b>evil</b>", status="failed",
                error=HOSTILE, metrics={}, onnx=None)
    rows.append(evil)
    write_jsonl(out / "results.jsonl", rows)
    return out


@pytest.fixture(scope="session")
def report_path(run_dir, tmp_path_factory) -> Path:
    from reports import render

    return render.render([run_dir], tmp_path_factory.mktemp("html") / "report.html")


@pytest.fixture(scope="session")
def report_html(report_path) -> str:
    return report_path.read_text(encoding="utf-8")
