"""The tanh-regression task, framework-free: its spec and data, and the numpy column's hand-written
backward pass against finite differences (both variants: named layers and the Sequential container)."""
import numpy as np
import pytest

from harness.matrix import data as data_mod
from harness.matrix.registry import enumerate_cells
from harness.matrix.tasks import make_spec
from harness.measuring.measure import Recorder
from implementations.tanh_regression import numpy as tanh_numpy
from tanh_family import check_tanh_column


def float64_model(spec):
    model = tanh_numpy.build_model(spec)
    for layer in tanh_numpy.parameter_layers(model):
        layer.params = {k: v.astype(np.float64) for k, v in layer.params.items()}
    return model


def loss_of(model, x, y):
    return tanh_numpy.loss_fn(model.forward(x), y)[0]


@pytest.mark.parametrize("variant", ["modules", "sequential"])
@pytest.mark.parametrize("dataset", ["sin", "california"])
def test_backward_equals_finite_differences(variant, dataset):
    spec = make_spec("tanh_regression", "smoke", dataset=dataset, variant=variant, hidden=5)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, spec.d)), rng.normal(size=(7, 1))
    model = float64_model(spec)
    for layer in tanh_numpy.parameter_layers(model):  # non-zero biases, so that their gradients matter
        layer.params["bias"] = rng.normal(size=layer.params["bias"].shape)
    _, grad = tanh_numpy.loss_fn(model.forward(x), y)
    model.backward(grad)
    h = 1e-6
    for layer in tanh_numpy.parameter_layers(model):
        for name, value in layer.params.items():
            numeric = np.zeros_like(value)
            for i in np.ndindex(value.shape):
                saved = value[i]
                value[i] = saved + h
                up = loss_of(model, x, y)
                value[i] = saved - h
                down = loss_of(model, x, y)
                value[i] = saved
                numeric[i] = (up - down) / (2 * h)
            np.testing.assert_allclose(layer.grads[name], numeric, rtol=1e-6, atol=1e-9, err_msg=name)


def test_a_wrong_backward_is_caught():
    """The finite-difference check can fail: tanh' replaced by 1 (a linear layer's) moves the gradients."""
    spec = make_spec("tanh_regression", "smoke", hidden=3)
    model = float64_model(spec)
    x, y = np.linspace(-2, 2, 5)[:, None], np.zeros((5, 1))
    _, grad = tanh_numpy.loss_fn(model.forward(x), y)
    model.backward(grad)
    right = model.hidden.grads["kernel"].copy()
    model.act.backward = lambda g: g
    model.backward(grad)
    assert not np.allclose(model.hidden.grads["kernel"], right, rtol=1e-3)


def test_spec_param_counts_and_modes():
    sin, cal = make_spec("tanh_regression", dataset="sin"), make_spec("tanh_regression", dataset="california")
    assert (sin.d, sin.param_count) == (1, 1 * 32 + 32 + 32 + 1)
    assert (cal.d, cal.param_count) == (8, 8 * 32 + 32 + 32 + 1)
    adam = make_spec("tanh_regression", "quick", mode="adam-minibatch", init="shared")
    assert (adam.optimizer, adam.batch_size, adam.adam_eps) == ("adam", 32, 1e-8)
    assert make_spec("tanh_regression", mode="full-batch").optimizer == "sgd"
    for variant in ("modules", "sequential"):
        model = tanh_numpy.build_model(make_spec("tanh_regression", dataset="california", variant=variant))
        assert tanh_numpy.count_params(model) == cal.param_count


def test_sin_data_is_nonlinear_and_seeded():
    spec = make_spec("tanh_regression", "quick", dataset="sin")
    data = data_mod.load(spec)
    again = data_mod.load(spec)
    np.testing.assert_array_equal(data.x_train, again.x_train)
    assert data.x_train.shape == (1600, 1) and abs(float(data.x_train.std()) - 1) < 1e-5
    # a straight line explains little of sin(3x) on [-1, 1]: least squares leaves over a third of the variance
    assert data_mod.closed_form(data)["test_mse"] > 0.3 * float(data.y_test.var())


def test_default_quick_matrix_runs_sequential_on_sin_full_batch_only():
    cells = enumerate_cells(["tanh_regression"], ["numpy"], profile="quick")
    primary = [(c.dataset, c.mode) for c in cells if c.variant == "modules"]
    assert len(primary) == 8 and ("california", "adam-minibatch") in primary
    assert [(c.dataset, c.mode) for c in cells if c.variant == "sequential"] == [("sin", "full-batch")]


def test_numpy_trains_below_the_linear_fit_on_sin():
    spec = make_spec("tanh_regression", "quick", dataset="sin", mode="adam-full-batch")
    data = data_mod.load(spec)
    model = tanh_numpy.train(tanh_numpy.build_model(spec), spec, data, Recorder("linreg", epochs=spec.epochs))
    test_mse = float(np.mean((tanh_numpy.predict(model, data.x_test) - data.y_test) ** 2))
    assert test_mse < 0.25 * data_mod.closed_form(data)["test_mse"]


def test_numpy_column_through_the_runner(run_cells):
    check_tanh_column(run_cells, "numpy")
