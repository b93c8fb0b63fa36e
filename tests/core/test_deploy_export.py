"""harness.checks.deploy_export with stand-in implementations (numpy only): the statuses and the block."""
import types

import numpy as np
import pytest

from harness.checks import deploy_export

DATA = types.SimpleNamespace(x_test=np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32))
WEIGHTS = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)


def implementation(shift=0.0, export_error=None, load_error=None):
    """predict is x @ W; the 'exported file' is W saved with np.save, loaded back plus `shift`."""
    def export_deploy(model, path, example):
        if export_error:
            raise export_error
        np.save(path + ".npy", model)
        return {"exporter": "np.save", "file": path + ".npy"}

    def load_deploy(file):
        if load_error:
            raise load_error
        weights = np.load(file) + shift
        return lambda x: x @ weights

    return types.SimpleNamespace(__name__="stand_in", predict=lambda model, x: x @ model,
                                 export_deploy=export_deploy, load_deploy=load_deploy)


def test_an_equal_round_trip_is_ok_with_its_facts(tmp_path):
    row = deploy_export.check(implementation(), WEIGHTS, None, DATA, tmp_path)
    assert row["status"] == "ok" and row["max_abs_diff"] == 0.0 and row["argmax_agreement"] == 1.0
    assert row["exporter"] == "np.save" and row["file"] == "deploy.npy" and (tmp_path / "deploy.npy").exists()
    assert row["file_mb"] == pytest.approx((tmp_path / "deploy.npy").stat().st_size / 2**20)
    assert set(row["batches"]) == {"256", "37"}  # the test set of 50 rows is repeated up to 256
    assert row["export_s"] >= 0 and row["load_s"] >= 0 and row["first_call_s"] >= 0


def test_a_loaded_model_that_differs_is_a_mismatch(tmp_path):
    row = deploy_export.check(implementation(shift=1e-2), WEIGHTS, None, DATA, tmp_path)
    assert row["status"] == "mismatch" and row["max_abs_diff"] > deploy_export.MAX_ABS_DIFF


def test_failures_name_their_stage_and_unsupported_exporters_are_not_applicable(tmp_path):
    failed = deploy_export.check(implementation(load_error=OSError("bad file")), WEIGHTS, None, DATA, tmp_path)
    assert failed["status"] == "failed" and failed["stage"] == "load" and "bad file" in failed["error"]
    none = deploy_export.check(implementation(export_error=NotImplementedError("no exporter for this backend")),
                               WEIGHTS, None, DATA, tmp_path)
    assert none == {"status": "not_applicable", "error": "no exporter for this backend", "stage": "export"}
    absent = deploy_export.check(types.SimpleNamespace(__name__="plain"), WEIGHTS, None, DATA, tmp_path)
    assert absent["status"] == "not_applicable" and "export_deploy" in absent["error"]


def test_a_saved_model_folder_is_measured_whole(tmp_path):
    (tmp_path / "m" / "variables").mkdir(parents=True)
    (tmp_path / "m" / "saved_model.pb").write_bytes(b"x" * 1000)
    (tmp_path / "m" / "variables" / "v.data").write_bytes(b"x" * 3000)
    assert deploy_export.size_mb(tmp_path / "m") == pytest.approx(4000 / 2**20)
