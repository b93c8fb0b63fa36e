"""The parity run's float64 numpy reference and its comparison, framework-free.

The reference is what every column's first step must reproduce, so it is checked here against naive
loops, finite differences and closed forms; the comparison logic against made-up columns; and the
whole `dlrosetta parity` pipeline on the numpy linear-regression column and on deliberately wrong
dummy columns.
"""
import json
import textwrap

import numpy as np
import pytest

from harness import cli
from harness.checks import parity
from harness.matrix import registry
from harness.matrix.data import Data
from harness.matrix.init import dense_rows_nhwc_to_nchw, shared_params
from harness.matrix.tasks import make_spec
from harness.measuring.measure import Recorder

RNG = np.random.default_rng(0)


# -- layers against naive loops -------------------------------------------------------------------
def test_conv_matches_naive_loops():
    x, kernel, bias = RNG.normal(size=(2, 6, 7, 3)), RNG.normal(size=(3, 3, 3, 4)), RNG.normal(size=4)
    naive = np.zeros((2, 4, 5, 4))
    for n in range(2):
        for i in range(4):
            for j in range(5):
                for f in range(4):
                    naive[n, i, j, f] = np.sum(x[n, i:i + 3, j:j + 3, :] * kernel[:, :, :, f]) + bias[f]
    np.testing.assert_allclose(parity.conv2d_valid(x, kernel, bias), naive, rtol=1e-12, atol=1e-12)


def test_max_pool_floors_and_routes_the_gradient_to_the_max():
    x = RNG.normal(size=(2, 5, 7, 3))
    pooled, arg = parity.max_pool(x, 2)
    assert pooled.shape == (2, 2, 3, 3)  # 5 -> 2, 7 -> 3: the last odd row and column dropped
    naive = np.array([[[[x[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c].max() for c in range(3)] for j in range(3)]
                       for i in range(2)] for n in range(2)])
    np.testing.assert_array_equal(pooled, naive)
    grad = parity.max_pool_backward(np.ones_like(pooled), arg, x.shape, 2)
    for n, i, j, c in np.ndindex(*pooled.shape):  # each window's gradient goes to its max, and only there
        window, g = x[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c], grad[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c]
        assert g.sum() == 1 and window[g == 1][0] == window.max()
    assert grad[:, 4].sum() == 0 and grad[:, :, 6].sum() == 0  # nothing to the dropped row and column


def test_col2im_is_the_adjoint_of_im2col():
    x, cols = RNG.normal(size=(2, 6, 5, 3)), RNG.normal(size=(2, 4, 3, 27))
    # <im2col(x), cols> == <x, col2im(cols)>
    assert np.isclose(np.sum(parity.im2col(x, 3) * cols), np.sum(x * parity.col2im(cols, x.shape, 3)))


# -- the model: shapes, the shared weights, gradients ---------------------------------------------
@pytest.mark.parametrize("task", ["mnist_mlp", "mnist_cnn"])
def test_shared_params_have_the_spec_shapes_and_count(task):
    spec = make_spec(task, "smoke", init="shared")
    params = shared_params(spec)
    assert sum(p.size for layer in params for p in layer.values()) == spec.param_count
    assert all(p.dtype == np.float32 for layer in params for p in layer.values())
    if task == "mnist_cnn":
        assert [layer["kernel"].shape for layer in params] == [(3, 3, 1, 32), (3, 3, 32, 64), (1600, 10)]
    else:
        assert [layer["kernel"].shape for layer in params] == [(784, 256), (256, 128), (128, 10)]
    assert all(not layer["bias"].any() for layer in params)
    again = shared_params(spec)  # seeded: the same numbers every time
    assert all(np.array_equal(a["kernel"], b["kernel"]) for a, b in zip(params, again))
    logits = parity.forward(spec, parity.reference_params(spec), RNG.normal(size=(3, *((28, 28, 1) if
                            task == "mnist_cnn" else (784,)))))
    assert logits.shape == (3, 10) and logits.dtype == np.float64


def test_linear_regression_starts_from_zeros():
    spec = make_spec("linear_regression", "smoke", init="shared")
    (layer,) = shared_params(spec)
    assert layer["kernel"].shape == (spec.d, 1) and layer["bias"].shape == (1,)
    assert not layer["kernel"].any() and not layer["bias"].any()


def test_dense_rows_nhwc_to_nchw_matches_torch_flatten_order():
    spec = make_spec("mnist_cnn", "smoke", init="shared")
    features = RNG.normal(size=(4, 5, 5, 64))  # NHWC, after the second pooling
    kernel = RNG.normal(size=(1600, 10))
    nhwc = features.reshape(4, -1) @ kernel  # Keras / TF / Flax
    nchw = features.transpose(0, 3, 1, 2).reshape(4, -1) @ dense_rows_nhwc_to_nchw(kernel, spec)  # torch
    np.testing.assert_allclose(nchw, nhwc, rtol=1e-12)


def tiny_specs():
    return [make_spec("mnist_cnn", "smoke", init="shared", input_shape=(9, 9, 2), conv_filters=(3, 4),
                      num_classes=3),
            make_spec("mnist_mlp", "smoke", init="shared", input_shape=(3, 3, 1), hidden=(5, 4), num_classes=3),
            make_spec("linear_regression", "smoke", init="shared"),
            make_spec("tanh_regression", "smoke", dataset="california", init="shared", hidden=4)]


@pytest.mark.parametrize("spec", tiny_specs(), ids=["cnn", "mlp", "linreg", "tanh"])
def test_backward_matches_finite_differences(spec):
    params = parity.reference_params(spec)
    for layer in params:  # away from the symmetric start, so every path carries gradient
        for value in layer.values():
            value += RNG.normal(size=value.shape) * 0.3
    if spec.task in ("linear_regression", "tanh_regression"):
        x, y = RNG.normal(size=(6, spec.d)), RNG.normal(size=(6, 1))
    else:
        x = RNG.normal(size=(5, *spec.input_shape)) if spec.model == "cnn" else RNG.normal(size=(5, spec.input_size))
        y = RNG.integers(0, spec.num_classes, 5)
    cache = []
    _, grad_out = parity.loss_and_grad(spec, parity.forward(spec, params, x, cache), y)
    grads = parity.backward(spec, params, cache, grad_out)
    loss = lambda: parity.loss_and_grad(spec, parity.forward(spec, params, x), y)[0]  # noqa: E731
    for layer, grad in zip(params, grads):
        for name, value in layer.items():
            flat, analytic = value.reshape(-1), grad[name].reshape(-1)
            for i in range(flat.size):
                old = flat[i]
                flat[i] = old + 1e-6
                up = loss()
                flat[i] = old - 1e-6
                down = loss()
                flat[i] = old
                assert abs((up - down) / 2e-6 - analytic[i]) < 1e-7, (name, i)


# -- training references ----------------------------------------------------------------------------
def small_data(spec, n=64, batch=16):
    x = RNG.normal(size=(n, spec.input_size)).astype(np.float32)
    y = RNG.integers(0, spec.num_classes, n)
    return Data(x, y, x[:8], y[:8], batch, seed=3)


def test_full_batch_gradient_descent_reference_is_exact_gd():
    spec = make_spec("linear_regression", "smoke", init="shared")
    from harness.matrix.data import load

    data = load(spec)
    losses = parity.reference_curve(spec, data, 50, "gd")
    y = data.y_train.astype(np.float64)
    assert losses[0] == pytest.approx(float(np.mean(y**2)), rel=1e-12)  # zero init: the first loss is mean(y²)
    # GD on a quadratic: w_{k+1} = w_k - lr (2/n) Xᵀ(Xw_k - y), written as a matrix iteration
    x = np.hstack([data.x_train.astype(np.float64), np.ones((len(y), 1))])
    w = np.zeros((x.shape[1], 1))
    for k in range(50):
        assert losses[k] == pytest.approx(float(np.mean((x @ w - y) ** 2)), rel=1e-10)
        w -= spec.lr * 2 / len(y) * x.T @ (x @ w - y)


def test_adam_placements_agree_without_epsilon_and_differ_with_it():
    """epsilon hat (Keras, TF1) and eps on sqrt(v_hat) (torch, optax) are the same update when eps -> 0."""
    base = make_spec("mnist_mlp", "smoke", init="shared", input_shape=(4, 4, 1), hidden=(8,), num_classes=3)
    data = small_data(base)
    import dataclasses

    tiny = dataclasses.replace(base, adam_eps=1e-30)
    a, b = (parity.reference_curve(tiny, data, 12, rule) for rule in ("sqrt_vhat", "eps_hat"))
    np.testing.assert_allclose(a, b, rtol=1e-12)
    big = dataclasses.replace(base, adam_eps=1e-2)  # eps comparable to sqrt(v): the placements part
    a, b = (parity.reference_curve(big, data, 12, rule) for rule in ("sqrt_vhat", "eps_hat"))
    assert parity.max_rel_dev(b, a) > 1e-6
    assert a[0] == b[0]  # the first loss is before any update


def test_adam_reference_first_steps_by_hand():
    spec = make_spec("mnist_mlp", "smoke", init="shared", input_shape=(2, 2, 1), hidden=(3,), num_classes=2)
    data = small_data(spec, n=8, batch=4)
    losses = parity.reference_curve(spec, data, 2, "sqrt_vhat")
    params = parity.reference_params(spec)
    x, y = data.x_train[data.epoch_batches(0)[0]], data.y_train[data.epoch_batches(0)[0]]
    cache = []
    first, grad_out = parity.loss_and_grad(spec, parity.forward(spec, params, x, cache), y)
    grads = parity.backward(spec, params, cache, grad_out)
    for layer, grad in zip(params, grads):  # Adam's first step: m_hat = g, v_hat = g²
        for name in layer:
            layer[name] = layer[name] - spec.lr * grad[name] / (np.abs(grad[name]) + spec.adam_eps)
    x, y = data.x_train[data.epoch_batches(0)[1]], data.y_train[data.epoch_batches(0)[1]]
    second, _ = parity.loss_and_grad(spec, parity.forward(spec, params, x), y)
    assert losses == pytest.approx([first, second], rel=1e-12)


def test_recorder_turns_keras_running_means_back_into_step_losses():
    rec = Recorder("mnist")
    rec.running_mean_losses = True
    losses = [[2.0, 1.0, 0.5], [0.4, 0.2]]
    for epoch in losses:
        for k in range(1, len(epoch) + 1):
            rec.step(np.mean(epoch[:k]))  # what Keras logs after batch k
        rec.epoch()
    assert rec.step_losses() == pytest.approx([v for epoch in losses for v in epoch], rel=1e-12)
    plain = Recorder("mnist")
    plain.step(2.0)
    plain.step(1.0)
    assert plain.step_losses() == [2.0, 1.0]


# -- the comparison -----------------------------------------------------------------------------------
def fake_row(framework, variant, losses, status="ok", logits=None, task="mnist_mlp"):
    return {"cell": f"{task}/{framework}/{variant}/cpu/mnist", "task": task, "framework": framework,
            "variant": variant, "device": "cpu", "dataset": "mnist", "mode": None, "parity_steps": len(losses),
            "status": status, "error": None if status == "ok" else "not installed",
            "metrics": {} if status != "ok" else {"step_losses": list(losses),
                                                   "initial_outputs": logits or [[1.0, 2.0]]}}


def test_analyse_passes_agreeing_columns_and_names_the_ones_that_do_not():
    ref_curve = [2.0, 1.5, 1.2, 1.0]
    hat_curve = [2.0, 1.52, 1.23, 1.03]  # the float64 reference with Keras's Adam: a few % apart
    optax_curve = [2.0, 1.5001, 1.2001, 1.0001]  # and with optax's
    rows = [fake_row("pytorch", "eager", [2.0, 1.5, 1.2, 1.0]),
            fake_row("pytorch", "compile", [2.0, 1.5000001, 1.2000001, 1.0000001]),
            fake_row("pytorch", "dataloader", [2.0, 1.5, 1.2, 1.1]),  # drifts 10 % at the last step
            fake_row("lightning", "trainer", [2.0001, 1.5, 1.2, 1.0]),  # first step 5e-5 off
            fake_row("keras-torch", "sequential", hat_curve),  # Keras's Adam: its own rule and reference
            fake_row("jax", "jit", optax_curve),
            fake_row("tf1", "raw", [1.0] * 4, status="unavailable")]
    key = parity.group_key(rows[0])
    references = {key: {"first_step_loss": 2.0, "initial_outputs": [[1.0, 2.0]],
                        "curves": {"sqrt_vhat": ref_curve, "eps_hat": hat_curve, "keras_adam": hat_curve,
                                   "optax_adam": optax_curve}}}
    out = parity.analyse(rows, references)
    reference = out[0]
    assert reference["kind"] == "reference" and reference["metrics"]["first_step_loss"] == 2.0
    assert reference["metrics"]["eps_placement_max_rel_dev"] == pytest.approx(0.03)
    assert reference["metrics"]["rule_effect_max_rel_dev"]["keras_adam"] == pytest.approx(0.03)
    columns = {f"{r['framework']}/{r['variant']}": r for r in out[1:]}
    for name in ("pytorch/eager", "pytorch/compile", "jax/jit"):
        assert columns[name]["passed"], columns[name]["failures"]
    assert columns["pytorch/eager"]["metrics"]["first_step_rel_dev"] == 0.0
    assert columns["pytorch/eager"]["metrics"]["first_logits_max_abs_diff"] == 0.0
    drift = columns["pytorch/dataloader"]
    assert not drift["passed"] and "median" in drift["failures"][0] and "reference" in drift["failures"][1]
    assert drift["metrics"]["max_curve_rel_dev"] == pytest.approx(0.1, rel=1e-3)
    assert not columns["lightning/trainer"]["passed"] and "first-step" in columns["lightning/trainer"]["failures"][0]
    keras = columns["keras-torch/sequential"]
    assert keras["passed"] and keras["metrics"]["update_rule"] == "keras_adam" and "epsilon" in keras["explained"]
    assert keras["metrics"]["curve_rel_dev_vs_reference"] == 0.0
    assert columns["jax/jit"]["metrics"]["update_rule"] == "optax_adam"
    assert columns["tf1/raw"]["passed"] is None  # did not run here: neither pass nor fail
    assert "FAIL" in parity.summary_table(out)


def test_float32_floor_widens_the_curve_threshold():
    assert parity.curve_tolerance("mnist", None) == parity.CURVE_RTOL["mnist"]
    assert parity.curve_tolerance("mnist", 1e-6) == parity.CURVE_RTOL["mnist"]
    assert parity.curve_tolerance("mnist", 3e-3) == pytest.approx(parity.FLOOR_FACTOR * 3e-3)


# -- the whole command, framework-free ---------------------------------------------------------------
def numpy_parity(out, task: str, steps: int) -> list[dict]:
    """`dlrosetta parity` of the numpy column of `task`: its column rows (the run must pass)."""
    code = cli.main(["parity", "--tasks", task, "--frameworks", "numpy", "--steps", str(steps),
                     "--profile", "smoke", "--out", str(out), "--no-progress"])
    rows = [json.loads(line) for line in (out / parity.PARITY_FILE).read_text().splitlines()]
    columns = [r for r in rows if r["kind"] == "column"]
    assert code == 0, [r["failures"] for r in columns]
    return columns


def test_parity_numpy_linear_regression_matches_the_reference(tmp_path):
    out = tmp_path / "parity"
    columns = numpy_parity(out, "linear_regression", 20)
    assert len(columns) == 1 and columns[0]["status"] == "ok"
    m = columns[0]["metrics"]
    assert m["steps_recorded"] == 20
    assert m["first_step_rel_dev"] <= parity.FIRST_STEP_RTOL
    assert m["curve_rel_dev_vs_reference"] <= 1e-5
    assert (out / parity.CELLS_FILE).exists() and (out / parity.REFERENCE_CACHE).exists()
    # resuming runs nothing new and gives the same verdict
    assert cli.main(["parity", "--tasks", "linear_regression", "--frameworks", "numpy", "--steps", "20",
                     "--profile", "smoke", "--out", str(out), "--no-progress", "--resume"]) == 0
    assert len((out / parity.CELLS_FILE).read_text().splitlines()) == 1
    # and without --resume the dir is not overwritten
    assert cli.main(["parity", "--tasks", "linear_regression", "--frameworks", "numpy", "--steps", "20",
                     "--profile", "smoke", "--out", str(out), "--no-progress"]) == 2


def test_parity_numpy_tanh_regression_both_optimizers(tmp_path):
    """The hand-written numpy column against the float64 reference, SGD full-batch and Adam mini-batch:
    the first step within 1e-5, 100 steps within 1e-3 (measured: a few 1e-7)."""
    columns = numpy_parity(tmp_path / "parity", "tanh_regression", 100)
    assert sorted((r["mode"], r["variant"]) for r in columns) == [
        ("adam-minibatch", "modules"), ("adam-minibatch", "sequential"), ("full-batch", "modules"),
        ("full-batch", "sequential")]
    for r in columns:
        m = r["metrics"]
        assert m["steps_recorded"] >= 100 and m["first_step_rel_dev"] <= 1e-5, r["cell"]
        assert r["thresholds"]["curve_rel"] == 1e-3 and m["curve_rel_dev_vs_reference"] <= 1e-5, r["cell"]
        assert m["update_rule"] == ("sqrt_vhat" if r["mode"] == "adam-minibatch" else "gd")


WRONG = textwrap.dedent('''
    import numpy as np
    VARIANTS = {"right": "", "same": "", "again": "", "ones_init": "", "lr_typo": "", "short": ""}

    def build_model(spec):
        fill = 1.0 if spec.variant == "ones_init" else 0.0
        return {"A": np.full((spec.d, 1), fill, np.float32), "b": np.zeros((1,), np.float32)}

    def train(model, spec, data, rec):
        lr = spec.lr * (1.01 if spec.variant == "lr_typo" else 1.0)
        epochs = spec.epochs - 1 if spec.variant == "short" else spec.epochs
        for epoch in range(epochs):
            for x, y in data.batches(epoch):
                r = x @ model["A"] + model["b"] - y
                loss = float(np.mean(r ** 2))
                model["A"] -= np.float32(lr * 2 / len(x)) * (x.T @ r)
                model["b"] -= np.float32(lr * 2 / len(x)) * r.sum(axis=0)
                rec.step(loss)
            rec.epoch(model)
        return model

    def predict(model, x):
        return np.asarray(x, np.float32) @ model["A"] + model["b"]
''')


@pytest.fixture
def wrong_impls(tmp_path, monkeypatch):
    """An implementations package whose linear_regression/numpy.py has one wrong variant per mistake."""
    files = {"__init__.py": "", "linear_regression/__init__.py": "", "linear_regression/numpy.py": WRONG}
    for name, text in files.items():
        path = tmp_path / "pkgs" / "wrong_impls" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "pkgs"))  # for the cells' processes
    monkeypatch.setenv("DLROSETTA_IMPL_PACKAGE", "wrong_impls")
    registry.impl_path.cache_clear()  # the registry caches where implementations are
    registry.variants.cache_clear()
    yield tmp_path
    registry.impl_path.cache_clear()
    registry.variants.cache_clear()


def test_parity_fails_wrong_columns_and_says_why(wrong_impls, capsys):
    out = wrong_impls / "parity"
    code = cli.main(["parity", "--tasks", "linear_regression", "--frameworks", "numpy", "--steps", "10",
                     "--profile", "smoke", "--out", str(out), "--no-progress"])
    columns = {r["variant"]: r for r in map(json.loads, (out / parity.PARITY_FILE).read_text().splitlines())
               if r["kind"] == "column"}
    assert code == 1
    for name in ("right", "same", "again"):  # three right columns: the median is theirs
        assert columns[name]["passed"], columns[name]["failures"]
    assert not columns["ones_init"]["passed"] and "first-step loss" in columns["ones_init"]["failures"][0]
    assert not columns["lr_typo"]["passed"] and "reference" in " ".join(columns["lr_typo"]["failures"])
    assert columns["lr_typo"]["metrics"]["first_step_rel_dev"] <= parity.FIRST_STEP_RTOL  # same start ...
    assert not columns["short"]["passed"] and "expected 10" in " ".join(columns["short"]["failures"])
    err = capsys.readouterr().err
    assert "ones_init" in err and "lr_typo" in err and "short" in err


def test_keras_and_optax_float32_adam_scalars_are_a_few_millionths_off():
    """What the keras_adam and optax_adam rules model: 1 - b2^t from float32 powers of b2 = 0.999."""
    spec = make_spec("mnist_mlp", "smoke", init="shared")
    for t in (1, 10, 100):
        exact = spec.lr * (1 - spec.beta2**t) ** 0.5 / (1 - spec.beta1**t)
        assert -1e-5 < parity.keras_step_size(spec, t) / exact - 1 < -3e-6
        _, c2 = parity.float32_bias_corrections(spec, t)
        assert -2e-5 < c2 / (1 - spec.beta2**t) - 1 < -6e-6
