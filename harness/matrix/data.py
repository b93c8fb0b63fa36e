"""Data for every task, framework-free: the same arrays and the same batch order for every framework.

Where the files come from, in order: ``--data-dir`` / ``DLROSETTA_DATA`` (a folder holding
``mnist/``, ``fashion-mnist/``, ``california-housing/``), then a download cache
(``DLROSETTA_CACHE``, default ``~/.cache/dlrosetta``) filled from the usual public mirrors. Every file
is checked against its SHA-256 before use; a missing or corrupt file is a one-line `DataError`. The decoded
MNIST arrays are kept in the cache too (``decoded/``), so a run's cells read them without a gunzip.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DataError(RuntimeError):
    """Data that cannot be had or is not what was expected (one line, names the file)."""


# --------------------------------------------------------------------------------------------------
# Files, checksums, mirrors
# --------------------------------------------------------------------------------------------------
IDX_FILES = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}
MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ],
}
CALIFORNIA_FILE = "cal_housing.data"
CALIFORNIA_SHA256 = "d3d8a1a722ae78f91134862727d27a70b1415e7d512a89140406248687f4b902"
# scikit-learn's copy of the StatLib archive; the .data member is extracted and checked as above
CALIFORNIA_ARCHIVE = (
    "https://ndownloader.figshare.com/files/5976036",
    "aaa5c9a6afe2225cc2aed2723682ae403280c4a3695a2ddda4ffb5d8215ea681",
    "CaliforniaHousing/cal_housing.data",
)
CALIFORNIA_FEATURES = ("MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup",
                       "Latitude", "Longitude")


def data_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    value = explicit or os.environ.get("DLROSETTA_DATA")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    return Path(os.environ.get("DLROSETTA_CACHE", Path.home() / ".cache" / "dlrosetta")).expanduser()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check(path: Path, sha256: str) -> Path:
    actual = sha256_of(path)
    if actual != sha256:
        raise DataError(f"{path}: SHA-256 {actual[:12]}… is not the expected {sha256[:12]}… (corrupt or wrong file)")
    return path


def _download(urls: list[str], dest: Path, sha256: str, timeout: float = 30.0) -> Path:
    import urllib.request  # here, not at the top: 30 ms of every cell process that never downloads
    if os.environ.get("DLROSETTA_OFFLINE") == "1":
        raise DataError("offline (DLROSETTA_OFFLINE=1)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, \
                    tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
                shutil.copyfileobj(response, tmp)
            if sha256_of(Path(tmp.name)) != sha256:
                os.unlink(tmp.name)
                errors.append(f"{url}: checksum mismatch")
                continue
            os.replace(tmp.name, dest)
            return dest
        except OSError as exc:  # URLError, timeouts, HTTP errors
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
    raise DataError("; ".join(errors))


def locate(dataset: str, name: str, sha256: str, urls: list[str], explicit_dir=None) -> Path:
    """A verified local copy of `dataset/name`: from the data dir, the cache, or a download."""
    where = data_dir(explicit_dir)
    if where is not None:
        path = where / dataset / name
        if path.exists():
            return _check(path, sha256)
    cached = cache_dir() / dataset / name
    if cached.exists():
        return _check(cached, sha256)
    try:
        return _download(urls, cached, sha256)
    except DataError as exc:
        looked = f"{where / dataset / name} not found" if where else "no --data-dir/DLROSETTA_DATA given"
        raise DataError(f"{dataset}/{name}: {looked}, and download failed ({exc})") from None


# --------------------------------------------------------------------------------------------------
# Batches: one seeded permutation per epoch, shared by every framework
# --------------------------------------------------------------------------------------------------
@dataclass
class Data:
    """Arrays in memory plus the batch order. Implementations read, never copy, these."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    batch_size: int
    seed: int = 0
    max_rows: int | None = None  # rows visited per epoch (None: all)
    info: dict = field(default_factory=dict)

    @property
    def rows_per_epoch(self) -> int:
        n = len(self.x_train)
        return n if self.max_rows is None else min(n, self.max_rows)

    @property
    def steps_per_epoch(self) -> int:
        # the last partial batch is dropped, so every step of every framework has the same shape
        return max(1, self.rows_per_epoch // self.batch_size)

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """Indices of every batch of `epoch`, shape (steps, batch_size)."""
        perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.x_train))
        steps = self.steps_per_epoch
        return perm[: steps * self.batch_size].reshape(steps, self.batch_size)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The same indices, flat: for fit-style APIs fed with `shuffle=False`."""
        return self.epoch_batches(epoch).reshape(-1)

    def batches(self, epoch: int):
        """Yield (x, y) numpy batches of `epoch` in the shared order."""
        for idx in self.epoch_batches(epoch):
            yield self.x_train[idx], self.y_train[idx]


# --------------------------------------------------------------------------------------------------
# MNIST and any IDX dataset
# --------------------------------------------------------------------------------------------------
def read_idx(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
        zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
        if zero != 0 or dtype_code != 0x08:
            raise ValueError("bad magic")
        shape = struct.unpack(">" + "I" * ndim, raw[4: 4 + 4 * ndim])
        array = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        return array.reshape(shape)
    except (OSError, ValueError, struct.error, EOFError) as exc:
        raise DataError(f"{path}: not a gzipped IDX file ({exc})") from None


def read_idx_cached(path: Path, sha256: str) -> np.ndarray:
    """`read_idx` through a decoded copy in the cache, so that the cells of a run skip the gunzip (0.2-0.3 s
    a process on the reference machine). The copy is named by the archive's SHA-256 (checked before this
    is called) and by the first 16 hex digits of its own, checked on every read; a copy that fails the
    check is replaced, and a cache that cannot be written only costs the gunzip."""
    folder = cache_dir() / "decoded"

    def name(array):  # what a copy of `array` is written as and, read back, must still be called
        return f"{sha256}-{hashlib.sha256(array.data).hexdigest()[:16]}.npy"

    for hit in folder.glob(f"{sha256}-*.npy"):
        try:
            array = np.load(hit, allow_pickle=False)
            if name(array) == hit.name:
                return array
            hit.unlink()
        except (OSError, ValueError):
            continue
    array = read_idx(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as tmp:
            np.save(tmp, array)
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, folder / name(array))
    except OSError:
        pass
    return array


def load_idx_dataset(dataset: str, explicit_dir=None) -> tuple[np.ndarray, ...]:
    """uint8 images (N, 28, 28) and int64 labels for train and test."""
    if dataset not in IDX_FILES:
        raise DataError(f"unknown IDX dataset {dataset!r}; known: {', '.join(IDX_FILES)}")
    arrays = []
    for name, sha in IDX_FILES[dataset].items():
        path = locate(dataset, name, sha, [m + name for m in MIRRORS[dataset]], explicit_dir)
        arrays.append(read_idx_cached(path, sha))
    x_train, y_train, x_test, y_test = arrays
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def mnist_data(spec, explicit_dir=None) -> Data:
    """Pixels / 255, normalised with the spec's mean and std; MLP gets (N, 784), CNN (N, 28, 28, 1)."""
    x_train, y_train, x_test, y_test = load_idx_dataset(spec.dataset, explicit_dir)
    if spec.train_subset:
        x_train, y_train = x_train[: spec.train_subset], y_train[: spec.train_subset]
    if spec.test_subset:
        x_test, y_test = x_test[: spec.test_subset], y_test[: spec.test_subset]
    shape = (-1, spec.input_size) if spec.model == "mlp" else (-1, *spec.input_shape)

    def prepare(x):
        # one new float32 array, normalised in place: the same float32 operations as
        # (x / 255 - mean) / std, without the three temporaries (each a round of page faults)
        out = x.reshape(shape).astype(np.float32)
        out /= np.float32(255.0)
        out -= np.float32(spec.mean)
        out /= np.float32(spec.std)
        return out

    return Data(prepare(x_train), y_train, prepare(x_test), y_test, spec.batch_size, spec.seed,
                info={"dataset": spec.dataset, "n_train": len(x_train), "n_test": len(x_test)})


# --------------------------------------------------------------------------------------------------
# Linear regression datasets
# --------------------------------------------------------------------------------------------------
def california_path(explicit_dir=None) -> Path:
    """A verified local `cal_housing.data`: from the data dir, the cache, or the archive downloaded."""
    import tarfile

    url, archive_sha, member = CALIFORNIA_ARCHIVE
    where = data_dir(explicit_dir)
    candidates = [where / "california-housing" / CALIFORNIA_FILE] if where else []
    candidates.append(cache_dir() / "california-housing" / CALIFORNIA_FILE)
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        archive = cache_dir() / "california-housing" / "cal_housing.tgz"
        try:
            if not archive.exists():
                _download([url], archive, archive_sha)
            with tarfile.open(archive) as tar:
                payload = tar.extractfile(member).read()
        except (DataError, tarfile.TarError, KeyError, AttributeError) as exc:
            looked = f"{candidates[0]} not found" if where else "no --data-dir/DLROSETTA_DATA given"
            raise DataError(f"california-housing/{CALIFORNIA_FILE}: {looked}, and download failed ({exc})") from None
        path = candidates[-1]
        path.write_bytes(payload)
    return _check(path, CALIFORNIA_SHA256)


def california_raw(explicit_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """The 8 features and target exactly as scikit-learn's `fetch_california_housing` derives them."""
    path = california_path(explicit_dir)
    try:
        table = np.loadtxt(path, delimiter=",")
    except ValueError as exc:
        raise DataError(f"{path}: not a 9-column CSV ({exc})") from None
    if table.shape != (20640, 9):
        raise DataError(f"{path}: expected 20640 rows x 9 columns, found {table.shape}")
    # file columns: longitude, latitude, housingMedianAge, totalRooms, totalBedrooms, population,
    # households, medianIncome, medianHouseValue
    table = table[:, [8, 7, 2, 3, 4, 5, 6, 1, 0]]
    target, x = table[:, 0] / 100000.0, table[:, 1:].copy()
    x[:, 2] /= x[:, 5]  # AveRooms = rooms / households
    x[:, 3] /= x[:, 5]  # AveBedrms = bedrooms / households
    x[:, 5] = x[:, 4] / x[:, 5]  # AveOccup = population / households
    return x, target


def diabetes_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes  # bundled with scikit-learn: no download

    bunch = load_diabetes(scaled=False)
    return bunch.data.astype(np.float64), bunch.target.astype(np.float64)


def synthetic_raw(spec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(spec.seed)
    a = rng.normal(size=(spec.d, 1))
    b = rng.normal(size=(1,))
    x = rng.normal(size=(spec.n, spec.d))
    y = x @ a + b + spec.noise * rng.normal(size=(spec.n, 1))
    return x, y[:, 0], a, b


def sin_raw(spec) -> tuple[np.ndarray, np.ndarray]:
    """x ~ U(-1, 1), y = sin(3x) + noise: one period of a sine, which no straight line fits."""
    rng = np.random.default_rng([spec.seed, 3])
    x = rng.uniform(-1.0, 1.0, size=(spec.n, 1))
    return x, np.sin(3.0 * x[:, 0]) + spec.noise * rng.normal(size=spec.n)


def linreg_data(spec, explicit_dir=None) -> Data:
    """Seeded train/test split, features standardised with the training statistics."""
    info: dict = {"dataset": spec.dataset}
    if spec.dataset == "synthetic":
        x, y, a, b = synthetic_raw(spec)
        info.update(true_A=a[:, 0].tolist(), true_b=b.tolist())
    elif spec.dataset == "diabetes":
        x, y = diabetes_raw()
    elif spec.dataset == "california":
        x, y = california_raw(explicit_dir)
        info["features"] = list(CALIFORNIA_FEATURES)
    elif spec.dataset == "sin":
        x, y = sin_raw(spec)
    else:
        raise DataError(f"unknown linear-regression dataset {spec.dataset!r}")
    perm = np.random.default_rng(spec.seed).permutation(len(x))
    n_test = int(round(len(x) * spec.test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    mu, sigma = x[train].mean(axis=0), x[train].std(axis=0)
    sigma[sigma == 0] = 1.0
    info.update(mu=mu.tolist(), sigma=sigma.tolist(), n_train=len(train), n_test=len(test), d=x.shape[1])

    def prepare(rows):
        return (((x[rows] - mu) / sigma).astype(np.float32), y[rows].reshape(-1, 1).astype(np.float32))

    x_train, y_train = prepare(train)
    x_test, y_test = prepare(test)
    batch = spec.batch_size or len(train)
    return Data(x_train, y_train, x_test, y_test, batch, spec.seed, spec.max_rows, info)


def closed_form(data: Data) -> dict:
    """Least squares on the same split (float64 numpy lstsq): the floor every framework aims at."""
    def design(x):
        return np.hstack([x.astype(np.float64), np.ones((len(x), 1))])

    coef, *_ = np.linalg.lstsq(design(data.x_train), data.y_train.astype(np.float64), rcond=None)
    mse = lambda x, y: float(np.mean((design(x) @ coef - y.astype(np.float64)) ** 2))  # noqa: E731
    return {"A": coef[:-1, 0], "b": coef[-1], "train_mse": mse(data.x_train, data.y_train),
            "test_mse": mse(data.x_test, data.y_test)}


def preflight(dataset: str, explicit_dir=None) -> None:
    """Check (fetching if need be) the files of `dataset` before a run starts, so that a missing or
    corrupt file stops it with one line instead of failing every cell that reads it."""
    if dataset in IDX_FILES:
        load_idx_dataset(dataset, explicit_dir)  # and fills the decoded cache, once for the run
    elif dataset == "california":
        california_path(explicit_dir)


def load(spec, explicit_dir=None) -> Data | None:
    kind = getattr(spec, "task", "")
    if kind == "x2_descent":
        return None
    if kind in ("linear_regression", "tanh_regression"):  # the same split and standardisation
        return linreg_data(spec, explicit_dir)
    return mnist_data(spec, explicit_dir)
