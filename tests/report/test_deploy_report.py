"""The report's deployment-export table: one row per cell that has a `deploy` block, with its statuses counted."""
import shutil

from report_helpers import FIXTURE, read_jsonl, write_jsonl

from reports import render


def test_deploy_section_lists_each_exported_cell(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    rows = [r for r in read_jsonl(FIXTURE / "results.jsonl") if "deploy" not in r]
    write_jsonl(run_dir / "results.jsonl", rows)
    assert 'id="deploy"' not in render.render(run_dir, tmp_path / "plain.html").read_text()
    mnist = [r for r in rows if r["task"].startswith("mnist") and r["status"] == "ok"][:2]
    mnist[0]["deploy"] = {"status": "ok", "exporter": "torch.export.export + torch.export.save (.pt2)",
                          "file": "deploy.pt2", "file_mb": 0.9, "export_s": 1.5, "load_s": 0.25,
                          "first_call_s": 0.01, "max_abs_diff": 2.4e-7, "argmax_agreement": 1.0,
                          "batches": {"256": {"max_abs_diff": 2.4e-7}, "37": {"max_abs_diff": 1e-7}}}
    mnist[1]["deploy"] = {"status": "not_applicable", "error": "no exporter for this backend", "stage": "export"}
    write_jsonl(run_dir / "results.jsonl", rows)
    html = render.render(run_dir, tmp_path / "deploy.html").read_text()
    assert '<a href="#deploy">' in html
    section = html[html.index('<section id="deploy">'):]
    section = section[:section.index("</section>")]
    assert "torch.export.export + torch.export.save (.pt2)" in section and "2.40e-07" in section
    assert "100.00 %" in section and "no exporter for this backend" in section
    assert "1 ok" in section and "1 not_applicable" in section
