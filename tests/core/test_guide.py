"""The API crosswalk (reports/crosswalk.py) is complete: every task's table has every implementation file as a
column and every concept of CONCEPTS as a row (or in NOT_IN_TASK), with every cell marked, inherited or absent
with a reason. Framework-free: the implementation files are read, never imported."""
import re
from pathlib import Path

import pytest

from harness.matrix.registry import FRAMEWORKS, impl_path
from harness.matrix.tasks import TASKS
from reports import crosswalk

ROOT = Path(__file__).resolve().parents[2]
MARKED = {task: crosswalk.task_marks(task) for task in TASKS}


def test_every_task_and_every_implementation_file_is_a_column():
    for task in TASKS:
        modules = {info.module for fw, info in FRAMEWORKS.items() if impl_path(task, fw) is not None}
        assert modules, f"{task}: no implementation file"
        assert set(MARKED[task]) == modules
        for row in crosswalk.table(MARKED[task], crosswalk.load_marks, task).values():
            assert set(row) == modules


@pytest.mark.parametrize("task", TASKS)
def test_no_column_leaves_a_concept_unexplained(task):
    assert crosswalk.problems(task, MARKED[task], crosswalk.load_marks) == []


@pytest.mark.parametrize("task", TASKS)
def test_every_concept_is_a_row_or_said_not_to_apply(task):
    assert crosswalk.uncovered(task, MARKED[task], crosswalk.load_marks) == []
    rows = crosswalk.table(MARKED[task], crosswalk.load_marks, task)
    for concept, row in rows.items():
        for key, cell in row.items():
            assert cell.marks or (cell.absent and cell.absent.strip()), (task, concept, key)


def test_markers_sit_on_code_and_name_known_concepts():
    for task, files in MARKED.items():
        for fm in files.values():
            assert not fm.unknown and not fm.malformed, (fm.path, fm.unknown, fm.malformed)
            assert set(fm.absent) <= set(crosswalk.CONCEPTS)
            lines = (ROOT / fm.path).read_text(encoding="utf-8").splitlines()
            for marks in fm.marks.values():
                for m in marks:
                    assert 1 <= m.first <= m.line <= m.last <= len(lines), (fm.path, m.line)
                    text = crosswalk.strip_marker(lines[m.line - 1]).strip()
                    assert text and not text.startswith("#"), f"{fm.path}:{m.line}: marker without code"
                    assert "concept: " in lines[m.line - 1] and m.code
            assert not set(fm.marks) & set(fm.absent), f"{fm.path}: marked and absent at once"


def test_inheritance_points_at_files_of_the_registry():
    for files in MARKED.values():
        for fm in files.values():
            if fm.inherits:
                assert crosswalk.load_marks(fm.inherits) is not None, (fm.path, fm.inherits)


def test_the_checks_fail_on_a_gap_a_typo_and_a_bare_marker():
    good = crosswalk.parse("x = step()  # concept: step\n", "implementations/t/a.py")
    gap = crosswalk.parse("x = 1\n", "implementations/t/b.py")
    absent = crosswalk.parse("# concept-absent: step: nothing to step\nx = 1\n", "implementations/t/c.py")
    typo = crosswalk.parse("x = 1  # concept: stepp\n", "implementations/t/d.py")
    bare = crosswalk.parse("x = 1\n    # concept: step\n\ny = 2  # concept: step  # concept: loss\n", "e.py")
    none = lambda rel: None  # noqa: E731
    assert crosswalk.problems("t", {"a": good, "c": absent}, none) == []
    assert any("b.py neither marks it" in p for p in crosswalk.problems("t", {"a": good, "b": gap}, none))
    assert any("unknown concept 'stepp'" in p for p in crosswalk.problems("t", {"d": typo}, none))
    assert [line for line, _ in bare.malformed] == [2, 4]
    inherits = crosswalk.parse("from x import y  # concepts-from: t/a.py\n", "implementations/t/f.py")
    assert crosswalk.table({"a": good, "f": inherits}, lambda rel: good)["step"]["f"].inherited_from == good.path
    assert any("does not exist" in p for p in crosswalk.problems("t", {"f": inherits}, none))
    assert any("'loss' is marked in no column" in p for p in crosswalk.uncovered("t", {"a": good}, none))


def test_a_marked_statement_spanning_lines_is_shown_whole():
    source = "def f(a):\n    y = g(a,  # why\n          a)  # concept: loss\n    return y\n"
    (mark,) = crosswalk.parse(source, "p.py").marks["loss"]
    assert (mark.line, mark.first, mark.last, mark.code) == (3, 2, 3, "y = g(a, a)")
    header = crosswalk.parse("with tape:  # concept: gradient\n    y = 1\n", "p.py").marks["gradient"][0]
    assert header.code == "with tape:"


def test_the_guide_shows_marked_lines_tagged_and_markers_stripped():
    from reports import idioms  # pygments: the guide extra, installed in this env

    for g in idioms.guides():
        assert g.problems() == []
        for col in g.columns:
            html = "".join(str(part) for part in col.phases.values())
            shown = re.sub(r"<[^>]+>", "", html)
            assert "concept:" not in shown and "concepts-from:" not in shown, col.path
            prefix = idioms.line_prefix(g.task, col.key)
            for marks in col.marks.marks.values():
                for m in marks:
                    assert f'id="{prefix}-{m.line}" class="concept"' in html, (col.path, m.line)
