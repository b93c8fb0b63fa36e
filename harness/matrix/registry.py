"""Frameworks, implementations, variants and cells, found without importing any framework.

An implementation is the file ``implementations/<task>/<module>.py``; its variants are the keys of the
literal ``VARIANTS`` dict at its top (read with `ast`, so listing cells imports nothing). The first
variant is the framework's primary idiom. A variant named ``tuned…`` is the same model made fast with changes
an engineer would really make (issue 17): it trains to target like the primary, in float32.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from harness.matrix.tasks import PRIMARY_MODES, SECONDARY, TASKS, SpecError


@dataclass(frozen=True)
class Framework:
    name: str
    title: str
    family: str  # the tox env / extra that holds it
    module: str  # implementations/<task>/<module>.py
    requires: tuple[str, ...]  # importable top-level packages (checked with find_spec)
    packages: tuple[str, ...]  # distributions whose versions are recorded
    keras_backend: str | None = None
    note: str = ""


FRAMEWORKS: dict[str, Framework] = {f.name: f for f in (
    Framework("numpy", "NumPy (reference)", "core", "numpy", ("numpy",), ("numpy",),
              note="hand-written gradients: the framework-free reference"),
    Framework("pytorch", "PyTorch", "torch", "pytorch", ("torch",), ("torch",)),
    Framework("lightning", "Lightning", "torch", "lightning", ("torch", "lightning"), ("torch", "lightning")),
    Framework("tf1", "TF1 (compat.v1)", "tf", "tf1", ("tensorflow",), ("tensorflow",)),
    Framework("tf2", "TF2", "tf", "tf2", ("tensorflow",), ("tensorflow",)),
    Framework("keras-tensorflow", "Keras 3 · TensorFlow", "tf", "keras", ("keras", "tensorflow"),
              ("keras", "tensorflow"), keras_backend="tensorflow"),
    Framework("jax", "JAX + Optax", "jax", "jax", ("jax", "optax"), ("jax", "jaxlib", "optax")),
    Framework("flax", "Flax", "jax", "flax", ("jax", "flax", "optax"), ("jax", "flax", "optax")),
    Framework("haiku", "Haiku", "jax", "haiku", ("jax", "haiku", "optax"), ("jax", "dm-haiku", "optax")),
    Framework("keras-jax", "Keras 3 · JAX", "jax", "keras", ("keras", "jax"), ("keras", "jax"),
              keras_backend="jax"),
    Framework("keras-torch", "Keras 3 · PyTorch", "torch", "keras", ("keras", "torch"), ("keras", "torch"),
              keras_backend="torch"),
)}
FAMILIES = {fam: [f.name for f in FRAMEWORKS.values() if f.family == fam]
            for fam in ("core", "torch", "tf", "jax")}
ONNX_PACKAGES = ("onnx", "onnxruntime", "onnxscript", "tf2onnx", "jax2onnx")

# (task, framework) pairs that make no sense, with the reason shown in the report.
NOT_APPLICABLE = {
    ("x2_descent", "lightning"): "x² has no model or data: a Trainer has nothing to fit",
    ("x2_descent", "keras-tensorflow"): "x² has no model or data: compile/fit has nothing to fit",
    ("x2_descent", "keras-jax"): "x² has no model or data: compile/fit has nothing to fit",
    ("x2_descent", "keras-torch"): "x² has no model or data: compile/fit has nothing to fit",
    ("x2_descent", "flax"): "x² has no layers: plain JAX is the idiom (see the jax column)",
    ("x2_descent", "haiku"): "x² has no layers: plain JAX is the idiom (see the jax column)",
    ("mnist_mlp", "numpy"): "the numpy reference covers x² and linear regression",
    ("mnist_cnn", "numpy"): "the numpy reference covers x² and linear regression",
}
# (task, framework, variant): one idiom of a file that cannot run on one of its columns (a Keras file
# serves three backends), with the reason. The cell is listed and reported not_applicable.
_NO_TF = ("keras.callbacks.TensorBoard writes through tf.summary on every backend (Keras 3.15 imports "
          "tensorflow.summary), and this column's env has no TensorFlow")
VARIANT_NOT_APPLICABLE = {
    ("mnist_mlp", "keras-jax", "tensorboard"): _NO_TF,
    ("mnist_mlp", "keras-torch", "tensorboard"): _NO_TF,
}

# (framework, variant): an idiom that runs in fp32 only, with the reason; its --precision mixed/bf16 cells are
# not_applicable (the file's primary variant has the precision modes)
PRECISION_NOT_APPLICABLE = {
    ("tf1", "legacy_layers"): "tf.compat.v1.layers.dense creates float32 variables and computes in them; "
                              "the raw variant has the precision modes",
}

# (task, variant) -> the only modes it runs in, whatever the profile's policy (listed only there): gradient
# accumulation builds a mini-batch's update from single-sample gradients, so it needs a mini-batch.
VARIANT_MODES = {
    ("linear_regression", "accumulate"): ("minibatch",),
}


def impl_package() -> str:
    """Where implementations live; tests point this at a package of dummy cells."""
    return os.environ.get("DLROSETTA_IMPL_PACKAGE", "implementations")


def get_framework(name: str) -> Framework:
    if name not in FRAMEWORKS:
        raise SpecError(f"unknown framework {name!r}; choose from {', '.join(FRAMEWORKS)}")
    return FRAMEWORKS[name]


def module_name(task: str, framework: str) -> str:
    return f"{impl_package()}.{task}.{FRAMEWORKS[framework].module}"


@lru_cache(maxsize=None)
def impl_path(task: str, framework: str) -> Path | None:
    """The implementation file, located without importing it (or its framework)."""
    package = impl_package()
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / task / f"{FRAMEWORKS[framework].module}.py"
        if path.exists():
            return path
    return None


@lru_cache(maxsize=None)
def variants(task: str, framework: str) -> dict[str, str]:
    """`VARIANTS` of an implementation: {name: one-line description}; primary first."""
    path = impl_path(task, framework)
    if path is None:
        return {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "VARIANTS" for t in node.targets):
            return dict(ast.literal_eval(node.value))
    return {"default": ""}


TUNED_PREFIX = "tuned"
TUNED_FP32_ONLY = "a tuned variant is measured in float32: the primary variant has the precision modes"


def is_tuned(variant: str | None) -> bool:
    """A `tuned…` variant: the framework at its best, set beside its idiom (the report's idiom cost)."""
    return bool(variant) and variant.startswith(TUNED_PREFIX)


def applicability(task: str, framework: str, variant: str | None = None, params: tuple = ()) -> str | None:
    """None when the pair (and the variant, if given; the precision among the cell's params) is applicable,
    else the reason it is not."""
    if dict(params).get("precision", "fp32") != "fp32":
        if (framework, variant) in PRECISION_NOT_APPLICABLE:
            return PRECISION_NOT_APPLICABLE[(framework, variant)]
        if is_tuned(variant):
            return TUNED_FP32_ONLY
    if (task, framework) in NOT_APPLICABLE:
        return NOT_APPLICABLE[(task, framework)]
    if (task, framework, variant) in VARIANT_NOT_APPLICABLE:
        return VARIANT_NOT_APPLICABLE[(task, framework, variant)]
    if impl_path(task, framework) is None:
        return f"no implementation file {task}/{FRAMEWORKS[framework].module}.py"
    return None


@lru_cache(maxsize=None)
def missing_packages(framework: str) -> tuple[str, ...]:
    """Packages of `framework` not importable here (found with find_spec: nothing is imported)."""
    return tuple(p for p in FRAMEWORKS[framework].requires if importlib.util.find_spec(p) is None)


def gpu_present() -> bool:
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


@dataclass(frozen=True)
class Cell:
    task: str
    framework: str
    variant: str
    device: str = "cpu"
    dataset: str | None = None
    mode: str | None = None
    params: tuple[tuple[str, object], ...] = field(default=())  # sweep / --set overrides
    secondary: bool = field(default=False, compare=False)  # a secondary variant under a profile's policy

    @property
    def short_schedule(self) -> bool:
        """A secondary variant that the profile runs on its short schedule: a tuned one trains in full."""
        return self.secondary and not is_tuned(self.variant)

    @property
    def key(self) -> str:
        parts = [self.task, self.framework, self.variant, self.device]
        if self.dataset:
            parts.append(self.dataset)
        if self.mode:
            parts.append(self.mode)
        parts += [f"{k}={v}" for k, v in self.params]
        return "/".join(parts)

    @property
    def slug(self) -> str:
        return slug_of(self.key)

    @property
    def label(self) -> str:
        extra = " ".join(x for x in (self.dataset, self.mode) if x)
        extra += "".join(f" {k}={v}" for k, v in self.params)
        return f"{self.task} · {self.framework}/{self.variant}" + (f" · {extra.strip()}" if extra else "")


def slug_of(key: str) -> str:
    """A cell key as a folder name: "mnist_mlp/jax/jit/cpu/mnist/batch_size=64" ->
    "mnist_mlp__jax__jit__cpu__mnist__batch_size_64" (the run dir's cells/<slug>)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key.replace("/", "__"))


def enumerate_cells(tasks, frameworks, devices=("cpu",), datasets=None, modes=None, variant_filter=None,
                    sweeps=None, profile: str | None = None) -> list[Cell]:
    """Every cell of the matrix, in a stable order: task, framework, variant, dataset, mode, sweep.

    Without a `variant_filter`, the profile's SECONDARY policy trims what secondary variants run."""
    cells = []
    for task in tasks:
        info = TASKS[task]
        task_datasets = [d for d in (datasets or []) if d in info.datasets] or _default_datasets(info)
        default_modes = PRIMARY_MODES.get(profile, info.modes) if info.modes else info.modes
        task_modes = [m for m in (modes or []) if m in info.modes] or list(default_modes) or [None]
        policy = {} if variant_filter or profile is None else SECONDARY[profile].get(info.kind, {})
        for fw in frameworks:
            names = list(variants(task, fw)) or ["default"]
            if variant_filter:
                names = [v for v in names if v in variant_filter] or names[:0]
            for variant in names:
                secondary = variant != names[0] and bool(policy)
                only = VARIANT_MODES.get((task, variant))
                variant_modes = task_modes
                if only:  # its own modes: those asked for with --modes, else all of them
                    variant_modes = [m for m in (task_modes if modes else only) if m in only]
                for device in devices:
                    for dataset in task_datasets:
                        if secondary and "datasets" in policy and dataset not in policy["datasets"]:
                            continue
                        for mode in variant_modes:
                            if secondary and "modes" in policy and not only and mode not in policy["modes"]:
                                continue
                            for params in sweeps or [()]:
                                cells.append(Cell(task, fw, variant, device, dataset, mode, tuple(params),
                                                  secondary=secondary))
    return cells


def _default_datasets(info) -> list:
    if info.kind == "linreg":
        return list(info.datasets)
    if info.kind == "mnist":
        return ["mnist"]
    return [None]
