"""The tasks, defined once and framework-free.

Every implementation file reads its constants from here (layer sizes, learning rates, epochs,
normalisation), so a change in the spec reaches every framework. Nothing in this module imports a
deep-learning framework.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

PROFILES = ("smoke", "quick", "full")
INITS = ("native", "shared")


class SpecError(ValueError):
    """A bad task, profile, dataset or override: reported as one line, exit 2."""


# --------------------------------------------------------------------------------------------------
# x² descent
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class X2Spec:
    task: str = "x2_descent"
    x0: float = 10.0
    lr: float = 0.1
    steps: int = 20
    seed: int = 0
    variant: str = ""
    device: str = "cpu"

    def exact_trajectory(self) -> list[float]:
        """x_{k+1} = x_k - lr * 2 x_k = (1 - 2 lr) x_k, so x_k = x0 (1 - 2 lr)^k."""
        return [self.x0 * (1.0 - 2.0 * self.lr) ** k for k in range(self.steps + 1)]


# --------------------------------------------------------------------------------------------------
# Linear regression Y = XA + b, MSE
# --------------------------------------------------------------------------------------------------
LINREG_DATASETS = ("synthetic", "diabetes", "california")
LINREG_MODES = ("full-batch", "sgd", "minibatch")

# Learning rate, epochs and batch size per mode: the same for every framework. Features are
# standardised, so these are stable for every dataset. `max_rows` bounds the rows one epoch visits in
# SGD mode (batch 1): the same rows, in the same order, for every framework.
LINREG_MODE_SETTINGS = {
    "full-batch": dict(lr=0.1, batch_size=None),
    "minibatch": dict(lr=0.02, batch_size=32),
    "sgd": dict(lr=0.005, batch_size=1),
}
# California's derived features have far outliers (AveOccup reaches ~100 standard deviations), so
# one sample's gradient can be 10⁴ times the typical one: small batches need a smaller step to stay stable.
LINREG_LR_OVERRIDES = {("california", "minibatch"): 0.001, ("california", "sgd"): 0.0002}
LINREG_EPOCHS = {  # profile -> mode -> epochs
    "smoke": {"full-batch": 200, "minibatch": 3, "sgd": 1},
    "quick": {"full-batch": 300, "minibatch": 5, "sgd": 1},
    "full": {"full-batch": 500, "minibatch": 10, "sgd": 2},
}
LINREG_SGD_MAX_ROWS = {"smoke": 256, "quick": 1000, "full": 2000}
LINREG_FEATURES = {"diabetes": 10, "california": 8}  # d of the real datasets (synthetic: spec.d)


@dataclass(frozen=True)
class LinRegSpec:
    task: str = "linear_regression"
    dataset: str = "synthetic"
    mode: str = "full-batch"
    lr: float = 0.1
    epochs: int = 300
    batch_size: int | None = None  # None: the whole training set (full-batch gradient descent)
    max_rows: int | None = None  # rows used per epoch (SGD mode), None: all
    # synthetic data: X ~ N(0, 1)^(n x d), Y = X A + b + noise, A and b drawn from the seed
    n: int = 2000
    d: int = 8  # number of features: set from the dataset for diabetes (10) and california (8)
    noise: float = 0.1
    test_fraction: float = 0.2
    seed: int = 0
    init: str = "native"  # linear regression always starts from zeros; kept for a uniform CLI
    variant: str = ""  # the idiom to run (an implementation's VARIANTS key)
    device: str = "cpu"  # "cpu" | "gpu"

    @property
    def n_outputs(self) -> int:
        return 1


# --------------------------------------------------------------------------------------------------
# Tanh regression: input d -> hidden H (tanh) -> 1 output, MSE
# --------------------------------------------------------------------------------------------------
# "sin": x ~ U(-1, 1), y = sin(3x) + noise, a curve no straight line fits; "california": linear
# regression's split and standardisation, so the two tasks' test MSEs compare on the same rows.
TANH_DATASETS = ("sin", "california")
# mode -> optimizer and batch: plain SGD or Adam, on the whole training set or on mini-batches of 32
TANH_MODE_SETTINGS = {
    "full-batch": dict(optimizer="sgd", lr=0.1, batch_size=None),
    "minibatch": dict(optimizer="sgd", lr=0.1, batch_size=32),
    "adam-full-batch": dict(optimizer="adam", lr=0.01, batch_size=None),
    "adam-minibatch": dict(optimizer="adam", lr=0.01, batch_size=32),
}
TANH_MODES = tuple(TANH_MODE_SETTINGS)
TANH_LR_OVERRIDES = {("california", "minibatch"): 0.01, ("california", "adam-minibatch"): 0.003}  # its outliers again (see LINREG_LR_OVERRIDES)
TANH_EPOCHS = {  # profile -> batching -> epochs
    "smoke": {"full-batch": 100, "minibatch": 2},
    "quick": {"full-batch": 200, "minibatch": 5},
    "full": {"full-batch": 1000, "minibatch": 10},
}


@dataclass(frozen=True)
class TanhSpec(LinRegSpec):
    task: str = "tanh_regression"
    dataset: str = "sin"
    d: int = 1  # 1 for sin, 8 for california
    hidden: int = 32  # H tanh units
    optimizer: str = "sgd"  # "sgd" | "adam"
    beta1: float = 0.9
    beta2: float = 0.999
    adam_eps: float | None = None  # None: each framework's default; `--init shared`: 1e-8 everywhere
    init: str = "native"  # "native": each framework's initialiser; "shared": the spec's weights

    @property
    def param_count(self) -> int:
        """d·H + H weights and biases into the hidden layer, H + 1 out of it (sin: 97, california: 321)."""
        return self.d * self.hidden + self.hidden + self.hidden + 1


# --------------------------------------------------------------------------------------------------
# MNIST MLP and CNN
# --------------------------------------------------------------------------------------------------
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
IDX_DATASETS = ("mnist", "fashion-mnist")
# The numerics of an MNIST cell (`dlrosetta run --precision`, a matrix dimension), each in the framework's
# own idiom: "fp32" all in float32; "mixed" float32 parameters and optimizer state with the matmuls and
# convolutions in bfloat16 (torch.autocast, Keras's "mixed_bfloat16" policy, a module's compute dtype);
# "bf16" parameters, optimizer state and compute all in bfloat16. precision -> (parameters, compute) dtype,
# which harness.checks.precision reads back from the trained model.
PRECISION_DTYPES = {"fp32": ("float32", "float32"), "mixed": ("float32", "bfloat16"),
                    "bf16": ("bfloat16", "bfloat16")}
PRECISIONS = tuple(PRECISION_DTYPES)


@dataclass(frozen=True)
class MnistSpec:
    task: str
    dataset: str = "mnist"
    input_shape: tuple[int, int, int] = (28, 28, 1)  # H, W, C: the harness hands out NHWC float32
    num_classes: int = 10
    hidden: tuple[int, ...] = (256, 128)  # MLP: 784-256-128-10, ReLU
    conv_filters: tuple[int, ...] = (32, 64)  # CNN: conv 3x3 valid + ReLU + max-pool 2, twice
    kernel_size: int = 3
    pool_size: int = 2
    lr: float = 1e-3  # Adam
    beta1: float = 0.9
    beta2: float = 0.999
    # Adam's epsilon: None keeps each framework's default (torch/optax/TF1 1e-8, Keras 1e-7);
    # `--init shared` sets it to 1e-8 everywhere (see harness.checks.parity).
    adam_eps: float | None = None
    batch_size: int = 128
    epochs: int = 5
    train_subset: int | None = None  # None: all 60 000 training images
    test_subset: int | None = None  # None: all 10 000 test images
    target_accuracy: float | None = None
    # stop after the first epoch whose test accuracy reaches the target ("trained to target", as in
    # MLPerf's time-to-train); `epochs` is then the most it may take. Off: exactly `epochs` epochs.
    stop_at_target: bool = False
    seed: int = 0
    init: str = "native"  # "native": each framework's initialiser; "shared": the spec's weights
    mean: float = MNIST_MEAN
    std: float = MNIST_STD
    variant: str = ""  # the idiom to run (an implementation's VARIANTS key)
    device: str = "cpu"  # "cpu" | "gpu"
    precision: str = "fp32"  # one of PRECISIONS

    @property
    def model(self) -> str:
        return "cnn" if self.task == "mnist_cnn" else "mlp"

    @property
    def input_size(self) -> int:
        h, w, c = self.input_shape
        return h * w * c

    @property
    def flat_size(self) -> int:
        """Features after the CNN's second pooling: 28 -> 26 -> 13 -> 11 -> 5, x 64 = 1600."""
        size = self.input_shape[0]
        for _ in self.conv_filters:
            size = (size - self.kernel_size + 1) // self.pool_size
        return size * size * self.conv_filters[-1]

    @property
    def param_count(self) -> int:
        """What every framework's model must have (MLP 235,146; CNN 34,826)."""
        if self.model == "mlp":
            sizes = (self.input_size, *self.hidden, self.num_classes)
            return sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
        count, channels = 0, self.input_shape[2]
        for filters in self.conv_filters:
            count += self.kernel_size**2 * channels * filters + filters
            channels = filters
        return count + self.flat_size * self.num_classes + self.num_classes

    @property
    def train_flops_per_step(self) -> int:
        """Multiply-adds x 2 of one training step on a batch: the matmuls and convolutions only
        (activations, pooling, the loss and Adam are a few % more). Per layer the forward pass costs
        F, the weight gradient F and the input gradient F, except at the first layer, whose input
        needs no gradient: 3F per layer, 2F for the first. MLP: 129 MFLOP at batch 128."""
        macs = []  # forward multiply-adds per sample, layer by layer
        if self.model == "mlp":
            sizes = (self.input_size, *self.hidden, self.num_classes)
            macs = [i * o for i, o in zip(sizes[:-1], sizes[1:])]
        else:
            size, channels = self.input_shape[0], self.input_shape[2]
            for filters in self.conv_filters:
                size -= self.kernel_size - 1
                macs.append(size * size * self.kernel_size**2 * channels * filters)
                size, channels = size // self.pool_size, filters
            macs.append(self.flat_size * self.num_classes)
        return 2 * self.batch_size * (3 * sum(macs) - macs[0])


MNIST_PROFILES = {  # profile -> task -> overrides
    "smoke": {
        "mnist_mlp": dict(train_subset=2048, test_subset=1000, epochs=1, target_accuracy=None),
        "mnist_cnn": dict(train_subset=1024, test_subset=500, epochs=1, target_accuracy=None),
    },
    "quick": {
        "mnist_mlp": dict(train_subset=12000, test_subset=2000, epochs=2, target_accuracy=0.93),
        "mnist_cnn": dict(train_subset=6000, test_subset=2000, epochs=1, target_accuracy=0.90),
    },
    "full": {
        "mnist_mlp": dict(epochs=10, target_accuracy=0.975, stop_at_target=True),
        "mnist_cnn": dict(epochs=4, target_accuracy=0.985, stop_at_target=True),
    },
}


# What the default matrix (no --variants, --dataset or --mode given) runs, per profile, so that `full`
# fits in 30 minutes on 2 CPU cores. Secondary variants (every VARIANTS entry after a file's first)
# are the same model in another idiom: linear regression runs them on synthetic full-batch only, and
# under `full` MNIST trains them for 100 steps (12,800 images, one epoch) — enough for a steady-state
# step time, which is what they show; accuracy targets are the primary variant's. `full` runs linear
# regression in full-batch mode only (the SGD and mini-batch modes are in `quick` and `smoke`).
# Tanh regression is a regression task too ("linreg" kind): its secondary variants run on "sin" full-batch.
# A `tuned…` variant (registry.is_tuned) is secondary but keeps the full schedule: its time to target counts.
SECONDARY = {
    "smoke": {},
    "quick": {"linreg": {"datasets": ("synthetic", "sin"), "modes": ("full-batch",)}},
    "full": {"linreg": {"datasets": ("synthetic", "sin"), "modes": ("full-batch",)},
             "mnist": {"spec": {"epochs": 1, "train_subset": 12800, "target_accuracy": None}}},
}
PRIMARY_MODES = {"full": ("full-batch",)}  # linear-regression modes of the default matrix, per profile
# `--repeat N`: processes 1..N-1 of an MNIST cell are timing-only — one epoch of at most this many steps, no
# target (the full run, repeat 0, gives the accuracy). 100 steps is what a steady-state median needs.
REPEAT_STEPS = 100


# --------------------------------------------------------------------------------------------------
# The registry of tasks
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    name: str
    title: str
    kind: str  # "x2" | "linreg" | "mnist"
    datasets: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    description: str = ""
    # the phases of an implementation file, in reading order (the idiom guide aligns on them)
    phases: tuple[str, ...] = field(default=("model", "loss", "step", "train", "evaluate", "export"))
    # False: the cells check an answer only (20 steps of x² take microseconds, no report ranks them), so
    # an executor may run them beside a timed cell (Ray: no dlrosetta_slot)
    timed: bool = True


TASKS: dict[str, Task] = {
    "x2_descent": Task(
        "x2_descent", "Gradient descent on x²", "x2",
        description="minimise f(x) = x², x0 = 10, lr = 0.1, 20 steps; exact: x_k = 10·0.8^k",
        phases=("model", "step", "train"), timed=False,
    ),
    "linear_regression": Task(
        "linear_regression", "Linear regression Y = XA + b", "linreg",
        datasets=LINREG_DATASETS, modes=LINREG_MODES,
        description="MSE, standardised features, zero init; full-batch, SGD (batch 1), mini-batch (32)",
    ),
    "tanh_regression": Task(
        "tanh_regression", "Tanh regression d-H-1", "linreg", datasets=TANH_DATASETS, modes=TANH_MODES,
        description="input d -> 32 tanh units -> 1 output, MSE; SGD or Adam, full-batch or mini-batch (32); "
                    "sin(3x) + noise (1-D) and California housing",
    ),
    "mnist_mlp": Task(
        "mnist_mlp", "MNIST MLP 784-256-128-10", "mnist", datasets=IDX_DATASETS,
        description="ReLU, Adam 1e-3, softmax cross-entropy on logits; 235,146 parameters",
    ),
    "mnist_cnn": Task(
        "mnist_cnn", "MNIST CNN (2 conv + 1 dense)", "mnist", datasets=IDX_DATASETS,
        description="conv32-pool-conv64-pool-dense10, Adam 1e-3; 34,826 parameters",
    ),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise SpecError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


def make_spec(task: str, profile: str = "full", dataset: str | None = None, mode: str | None = None,
              init: str = "native", **overrides):
    """The spec of one cell: task defaults, then the profile's settings, then explicit overrides."""
    kind = get_task(task).kind
    if profile not in PROFILES:
        raise SpecError(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    if init not in INITS:
        raise SpecError(f"unknown init {init!r}; choose from {', '.join(INITS)}")
    if kind == "x2":
        cls, values = X2Spec, {}
    elif task == "tanh_regression":
        dataset, mode = dataset or "sin", mode or "full-batch"
        if dataset not in TANH_DATASETS:
            raise SpecError(f"unknown dataset {dataset!r} for {task}; choose from {', '.join(TANH_DATASETS)}")
        if mode not in TANH_MODES:
            raise SpecError(f"unknown mode {mode!r} for {task}; choose from {', '.join(TANH_MODES)}")
        values = dict(dataset=dataset, mode=mode, init=init, **TANH_MODE_SETTINGS[mode])
        values["lr"] = TANH_LR_OVERRIDES.get((dataset, mode), values["lr"])
        values["epochs"] = TANH_EPOCHS[profile]["full-batch" if values["batch_size"] is None else "minibatch"]
        values["d"] = LINREG_FEATURES.get(dataset, 1)
        if profile == "smoke":
            values["n"] = 512
        if init == "shared":
            values["adam_eps"] = 1e-8
        cls = TanhSpec
    elif kind == "linreg":
        dataset = dataset or "synthetic"
        mode = mode or "full-batch"
        if dataset not in LINREG_DATASETS:
            raise SpecError(f"unknown dataset {dataset!r} for {task}; choose from {', '.join(LINREG_DATASETS)}")
        if mode not in LINREG_MODES:
            raise SpecError(f"unknown mode {mode!r}; choose from {', '.join(LINREG_MODES)}")
        values = dict(dataset=dataset, mode=mode, epochs=LINREG_EPOCHS[profile][mode], init=init,
                      **LINREG_MODE_SETTINGS[mode])
        values["lr"] = LINREG_LR_OVERRIDES.get((dataset, mode), values["lr"])
        if mode == "sgd":
            values["max_rows"] = LINREG_SGD_MAX_ROWS[profile]
        if profile == "smoke":
            values.update(n=512, d=4)
        if dataset in LINREG_FEATURES:
            values["d"] = LINREG_FEATURES[dataset]
        cls = LinRegSpec
    else:
        dataset = dataset or "mnist"
        if dataset not in IDX_DATASETS:
            raise SpecError(f"unknown dataset {dataset!r} for {task}; choose from {', '.join(IDX_DATASETS)}")
        values = dict(task=task, dataset=dataset, init=init, **MNIST_PROFILES[profile][task])
        if init == "shared":
            values["adam_eps"] = 1e-8
        if dataset != "mnist":
            values["target_accuracy"] = None  # the targets are MNIST's
        cls = MnistSpec
    names = {f.name for f in dataclasses.fields(cls)}
    for key, value in overrides.items():
        if key not in names or key == "task":
            raise SpecError(f"{task} has no setting {key!r}; settings: {', '.join(sorted(names - {'task'}))}")
        values[key] = value
    if values.get("precision", "fp32") not in PRECISIONS:
        raise SpecError(f"unknown precision {values['precision']!r}; choose from {', '.join(PRECISIONS)}")
    return cls(**values)


def spec_to_dict(spec) -> dict:
    return dataclasses.asdict(spec)


def spec_from_dict(values: dict):
    values = dict(values)
    kind = get_task(values["task"]).kind
    cls = {"x2": X2Spec, "linreg": LinRegSpec, "mnist": MnistSpec}[kind]
    cls = TanhSpec if values["task"] == "tanh_regression" else cls
    for key in ("input_shape", "hidden", "conv_filters"):
        if isinstance(values.get(key), list):  # JSON gives lists back (tanh's `hidden` is an int)
            values[key] = tuple(values[key])
    return cls(**values)


# The range of every setting that `--set` / `--sweep` may change: (kind, low, high, low inclusive,
# high inclusive). Checked before anything is written, so a bad value is a one-line usage error.
INF = float("inf")
SETTING_RANGES = {
    "lr": ("float", 0.0, INF, False, False), "epochs": ("int", 1, INF, True, False),
    "steps": ("int", 1, INF, True, False), "batch_size": ("int", 1, INF, True, False),
    "max_rows": ("int", 1, INF, True, False), "n": ("int", 2, INF, True, False), "d": ("int", 1, INF, True, False),
    "noise": ("float", 0.0, INF, True, False), "test_fraction": ("float", 0.0, 1.0, False, False),
    "seed": ("int", 0, 2**32 - 1, True, True), "train_subset": ("int", 1, INF, True, False),
    "test_subset": ("int", 1, INF, True, False), "target_accuracy": ("float", 0.0, 1.0, False, True),
    "beta1": ("float", 0.0, 1.0, True, False), "beta2": ("float", 0.0, 1.0, True, False),
    "adam_eps": ("float", 0.0, INF, False, False), "x0": ("float", -INF, INF, False, False),
    "num_classes": ("int", 2, INF, True, False), "kernel_size": ("int", 1, INF, True, False),
    "pool_size": ("int", 1, INF, True, False), "mean": ("float", -INF, INF, False, False),
    "std": ("float", 0.0, INF, False, False), "stop_at_target": ("bool", None, None, True, True),
}
NULLABLE = ("adam_eps", "target_accuracy", "train_subset", "test_subset", "max_rows")
FLAG_SETTINGS = {"dataset": "--dataset", "mode": "--mode", "variant": "--variants", "device": "--device",
                 "init": "--init", "precision": "--precision"}
DIMENSION_SETTINGS = ("precision",)  # spec fields that a flag of `run` makes a matrix dimension


def describe_range(key: str) -> str:
    kind, low, high, low_in, high_in = SETTING_RANGES[key]
    if kind == "bool":
        return "true or false"
    noun = "an integer" if kind == "int" else "a number"
    parts = []
    if low != -INF:
        parts.append(f"{'>=' if low_in else '>'} {low:g}")
    if high != INF:
        parts.append(f"{'<=' if high_in else '<'} {high:g}")
    text = f"{noun} {' and '.join(parts)}" if parts else f"a finite {'integer' if kind == 'int' else 'number'}"
    return text + (" (or none)" if key in NULLABLE else "")


def task_accepts(task: str, key: str) -> bool:
    """Whether `task`'s spec has the setting `key` (one that --set/--sweep may change)."""
    return ((key in SETTING_RANGES or key in DIMENSION_SETTINGS)
            and key in {f.name for f in dataclasses.fields(type(make_spec(task, "smoke")))})


def coerce_override(task: str, key: str, text: str):
    """Parse a `--sweep key=v1,v2` / `--set key=value` value with the type of the spec field and check
    it against SETTING_RANGES."""
    spec = make_spec(task, "smoke")
    if not hasattr(spec, key) or key == "task":
        names = sorted(f.name for f in dataclasses.fields(spec) if f.name != "task")
        raise SpecError(f"{task} has no setting {key!r}; settings: {', '.join(names)}")
    if key in FLAG_SETTINGS:
        raise SpecError(f"{key} is chosen with {FLAG_SETTINGS[key]}, not --set/--sweep")
    if key not in SETTING_RANGES:
        raise SpecError(f"{key} is part of the task's definition and cannot be changed from the command line")
    text = text.strip()
    if text.lower() == "none" and key in NULLABLE:
        return None
    kind, low, high, low_in, high_in = SETTING_RANGES[key]
    bad = SpecError(f"bad value {text!r} for {key}: expected {describe_range(key)}")
    if kind == "bool":
        if text.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise bad
        return text.lower() in ("1", "true", "yes")
    try:
        value = int(text) if kind == "int" else float(text)
    except ValueError:
        raise bad from None
    if value != value or value in (INF, -INF):
        raise bad
    if (value < low or (value == low and not low_in)) or (value > high or (value == high and not high_in)):
        raise bad
    return value
