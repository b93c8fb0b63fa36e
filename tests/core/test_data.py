"""Data: checksums, IDX parsing, California derivation, splits and the shared batch order."""
import gzip
import os
import shutil

import numpy as np
import pytest

from harness.matrix import data
from harness.matrix.tasks import make_spec


def test_mnist_loads_normalised_and_shaped():
    spec = make_spec("mnist_cnn", "smoke")
    d = data.mnist_data(spec)
    assert d.x_train.shape == (1024, 28, 28, 1) and d.x_train.dtype == np.float32
    assert d.y_train.dtype == np.int64 and set(np.unique(d.y_train)) <= set(range(10))
    # normalised with mean 0.1307, std 0.3081: background pixels are -0.4242
    assert d.x_train.min() == pytest.approx(-0.1307 / 0.3081, abs=1e-6)
    mlp = data.mnist_data(make_spec("mnist_mlp", "smoke"))
    assert mlp.x_train.shape == (2048, 784)


def test_full_mnist_label_counts_match_the_canonical_file():
    x_train, y_train, x_test, y_test = data.load_idx_dataset("mnist")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_decoded_cache_is_checked_and_never_skips_the_archive_check(tmp_path, monkeypatch):
    monkeypatch.setenv("DLROSETTA_CACHE", str(tmp_path / "cache"))
    first = data.load_idx_dataset("mnist")
    copies = sorted((tmp_path / "cache" / "decoded").glob("*.npy"))
    assert len(copies) == 4
    assert all(np.array_equal(a, b) for a, b in zip(first, data.load_idx_dataset("mnist")))
    # a copy whose bytes changed is found out by its own digest and replaced by a fresh decode
    labels = next(p for p in copies if p.name.startswith(data.IDX_FILES["mnist"]["t10k-labels-idx1-ubyte.gz"]))
    raw = bytearray(labels.read_bytes())
    raw[-1] ^= 1
    labels.write_bytes(bytes(raw))
    assert np.array_equal(data.load_idx_dataset("mnist")[3], first[3])
    assert labels.read_bytes() != bytes(raw)
    # the archive is still checked with the decoded copy in the cache
    bad = tmp_path / "data" / "mnist"
    shutil.copytree(data.data_dir() / "mnist", bad)
    os.chmod(bad / "t10k-labels-idx1-ubyte.gz", 0o644)
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"not an idx file"))
    with pytest.raises(data.DataError, match="SHA-256"):
        data.load_idx_dataset("mnist", tmp_path / "data")


def test_mnist_normalisation_is_the_float32_formula():
    spec = make_spec("mnist_mlp", "smoke")
    x = data.load_idx_dataset("mnist")[0][: spec.train_subset].reshape(-1, 784)
    expected = (x.astype(np.float32) / np.float32(255.0) - np.float32(spec.mean)) / np.float32(spec.std)
    assert np.array_equal(data.mnist_data(spec).x_train, expected)


def test_batch_order_is_seeded_shared_and_drops_the_remainder():
    d = data.Data(np.arange(10, dtype=np.float32)[:, None], np.arange(10), np.zeros((1, 1)), np.zeros(1),
                  batch_size=3, seed=7)
    e0 = d.epoch_batches(0)
    assert e0.shape == (3, 3)
    assert np.array_equal(e0, d.epoch_batches(0))  # the same for every framework
    assert not np.array_equal(e0, d.epoch_batches(1))  # a new permutation each epoch
    assert len(set(e0.ravel())) == 9
    xs = [x for x, _ in d.batches(0)]
    assert np.array_equal(np.concatenate(xs)[:, 0], e0.ravel().astype(np.float32))


def test_california_features_as_scikit_learn_derives_them():
    x, y = data.california_raw()
    assert x.shape == (20640, 8)
    means = [3.870671, 28.639486, 5.429000, 1.096675, 1425.476744, 3.070655, 35.631861, -119.569704]
    np.testing.assert_allclose(x.mean(axis=0), means, rtol=1e-6, atol=1e-6)
    assert y.mean() == pytest.approx(2.068558, abs=1e-6)


def test_linreg_split_standardised_with_train_statistics():
    spec = make_spec("linear_regression", "smoke", dataset="synthetic")
    d = data.linreg_data(spec)
    assert len(d.x_train) + len(d.x_test) == spec.n
    np.testing.assert_allclose(d.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(d.x_train.std(axis=0), 1, atol=1e-5)
    ref = data.closed_form(d)
    assert ref["test_mse"] == pytest.approx(spec.noise**2, rel=0.3)  # least squares leaves the noise


def test_diabetes_is_bundled():
    d = data.linreg_data(make_spec("linear_regression", "smoke", dataset="diabetes"))
    assert d.x_train.shape[1] == 10 and len(d.x_train) + len(d.x_test) == 442


def test_corrupt_file_is_a_one_line_error(tmp_path, monkeypatch):
    src = data.data_dir() / "mnist"
    bad = tmp_path / "mnist"
    shutil.copytree(src, bad)
    path = bad / "t10k-labels-idx1-ubyte.gz"
    os.chmod(path, 0o644)
    path.write_bytes(gzip.compress(b"not an idx file"))
    monkeypatch.setenv("DLROSETTA_DATA", str(tmp_path))
    monkeypatch.setenv("DLROSETTA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(data.DataError) as err:
        data.load_idx_dataset("mnist")
    assert "t10k-labels-idx1-ubyte.gz" in str(err.value) and "SHA-256" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file_offline_names_file_and_remedy(tmp_path, monkeypatch):
    monkeypatch.setenv("DLROSETTA_DATA", str(tmp_path))
    monkeypatch.setenv("DLROSETTA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DLROSETTA_OFFLINE", "1")
    with pytest.raises(data.DataError, match=r"mnist/train-images-idx3-ubyte.gz: .* not found"):
        data.load_idx_dataset("mnist")
    with pytest.raises(data.DataError, match="california-housing/cal_housing.data"):
        data.california_raw()


def test_download_verifies_checksum_and_caches(tmp_path, monkeypatch):
    """The download path, against a local file:// mirror: bad bytes are refused, good ones cached."""
    payload = b"hello"
    good = tmp_path / "mirror" / "file.bin"
    good.parent.mkdir()
    good.write_bytes(payload)
    sha = data.hashlib.sha256(payload).hexdigest()
    monkeypatch.setenv("DLROSETTA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DLROSETTA_OFFLINE", raising=False)
    with pytest.raises(data.DataError, match="download failed"):
        data.locate("demo", "file.bin", "0" * 64, [good.as_uri()], explicit_dir=tmp_path / "none")
    path = data.locate("demo", "file.bin", sha, [good.as_uri()], explicit_dir=tmp_path / "none")
    assert path == tmp_path / "cache" / "demo" / "file.bin" and path.read_bytes() == payload
    good.unlink()  # served from the cache from now on
    assert data.locate("demo", "file.bin", sha, [good.as_uri()], explicit_dir=tmp_path / "none") == path
