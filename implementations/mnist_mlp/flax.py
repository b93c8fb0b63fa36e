"""MNIST MLP in Flax. nnx (primary): a Module object holding its parameters, nnx.Optimizer and an
@nnx.jit step that updates both in place. linen: a stateless Module description whose parameters live in
a TrainState pytree, and a @jax.jit step that returns the next state."""
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, serialization
from flax.training import train_state

from harness.matrix.init import shared_params
from implementations.mnist_mlp.jax import export_function, load_deploy  # noqa: F401 - plain JAX: the same for Flax

VARIANTS = {
    "nnx": "flax.nnx Module + nnx.Optimizer + @nnx.jit train_step (Flax's current API)",
    "linen": "flax.linen Module + TrainState + @jax.jit train_step (the functional API before nnx)",
}


# %% model
class MLP(nnx.Module):
    def __init__(self, sizes, *, dtype=None, param_dtype=jnp.float32, rngs):  # dtypes: see precision below
        # nnx.List: a list of sub-Modules that nnx tracks as part of the model's state
        self.layers = nnx.List([nnx.Linear(i, o, dtype=dtype, param_dtype=param_dtype, rngs=rngs)  # concept: params
                                for i, o in zip(sizes[:-1], sizes[1:])])

    def __call__(self, x):
        *hidden, last = self.layers
        for layer in hidden:
            x = nnx.relu(layer(x))  # concept: forward
        return last(x)  # logits


class LinenMLP(nn.Module):
    sizes: tuple  # linen Modules are dataclasses: hyper-parameters only, the weights live outside
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        dtypes = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        for size in self.sizes[:-1]:
            x = nn.relu(nn.Dense(size, **dtypes)(x))  # the layer's parameters are created on first use (init)
        return nn.Dense(self.sizes[-1], **dtypes)(x)


def adam(spec):
    eps = 1e-8 if spec.adam_eps is None else spec.adam_eps  # optax's default; eps outside the sqrt, like torch
    return optax.adam(spec.lr, b1=spec.beta1, b2=spec.beta2, eps=eps)  # concept: optimizer


def with_init(model, layers, spec):
    """Flax initialises kernels LeCun-normal and biases zero; `--init shared` overwrites them with the
    spec's weights, which are already in Flax's layout ([in, out] / HWIO)."""
    if spec.init == "shared":
        for layer, params in zip(layers, shared_params(spec)):
            kernel, bias = (jnp.asarray(params[k], layer.param_dtype) for k in ("kernel", "bias"))
            layer.kernel.value, layer.bias.value = kernel, bias
    return model


def linen_state(module, input_shape, spec):
    """module.init runs the model once on a dummy batch to create its parameters; the TrainState
    bundles them with module.apply and the optimizer."""
    params = module.init(jax.random.key(spec.seed), jnp.zeros((1, *input_shape)))["params"]  # concept: seed
    if spec.init == "shared":  # linen names the layers Dense_0, Dense_1, ... in call order
        as_param = functools.partial(jnp.asarray, dtype=module.param_dtype)
        params = {name: jax.tree.map(as_param, p) for name, p in zip(params, shared_params(spec))}
    return train_state.TrainState.create(apply_fn=module.apply, params=params, tx=adam(spec))  # concept: optimizer


def build_model(spec):
    sizes = (spec.input_size, *spec.hidden, spec.num_classes)
    if spec.variant == "linen":
        return linen_state(LinenMLP(sizes[1:], **PRECISION[spec.precision]), (spec.input_size,), spec)
    # nnx.Rngs: explicit random keys
    model = MLP(sizes, **PRECISION[spec.precision], rngs=nnx.Rngs(spec.seed))  # concept: seed
    return with_init(model, model.layers, spec)


def count_params(model):
    params = model.params if isinstance(model, train_state.TrainState) else nnx.state(model, nnx.Param)
    return sum(p.size for p in jax.tree.leaves(params))


# %% precision
# Flax's idiom: every layer has a compute `dtype` (None: the inputs' and params' dtype) and a `param_dtype`;
# with dtype=bfloat16 a layer casts its float32 params and inputs itself, and the gradients stay float32
PRECISION = {"fp32": {"dtype": None, "param_dtype": jnp.float32},  # concept: precision
             "mixed": {"dtype": jnp.bfloat16, "param_dtype": jnp.float32},
             "bf16": {"dtype": jnp.bfloat16, "param_dtype": jnp.bfloat16}}


def precision_used(model, spec, x):
    linen = isinstance(model, train_state.TrainState)
    params = model.params if linen else nnx.state(model, nnx.Param)
    logits = linen_logits(model, x) if linen else nnx_logits(model, x)  # the forward loss_fn calls
    return {"params": jax.tree.leaves(params)[0].dtype, "compute": logits.dtype}


# %% loss
def loss_fn(model, x, y):
    logits = model(x).astype(jnp.float32)  # the loss in float32 whatever the compute dtype
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()  # concept: loss


# %% step
@nnx.jit  # like jax.jit, but it also carries the Modules' state in and writes the updates back  # concept: jit
# concept-absent: zero-grad: the gradients come back as a new pytree every step: nothing accumulates
def train_step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)  # w.r.t. the model's nnx.Params  # concept: gradient
    optimizer.update(model, grads)  # updates the model's parameters in place  # concept: step
    return loss


@jax.jit  # concept: jit
def linen_train_step(state, x, y):
    def linen_loss(params):  # the same loss_fn: a linen model is its apply_fn with explicit params
        return loss_fn(lambda x: state.apply_fn({"params": params}, x), x, y)

    loss, grads = jax.value_and_grad(linen_loss)(state.params)  # concept: gradient
    return state.apply_gradients(grads=grads), loss  # a new TrainState: params and Adam's moments  # concept: step


# %% train
# concept-absent: device: arrays go to JAX's default device, the GPU when one is visible
# concept-absent: mode: no layer here differs in training (nnx's model.eval() switches those that do)
def train(model, spec, data, rec):
    x_all, y_all = data.x_train, data.y_train  # numpy: batches are sliced on the host (see jax.py)
    if spec.variant != "linen":
        optimizer = nnx.Optimizer(model, adam(spec), wrt=nnx.Param)  # Adam's moments for every nnx.Param
        # nnx.jit walks the Python object graph on every call; cached_partial walks it once (the
        # documented fast path, "Performance considerations"): the same step, less host overhead
        step = nnx.cached_partial(train_step, model, optimizer)
    for epoch in range(spec.epochs):
        for idx in data.epoch_batches(epoch):  # concept: batching
            if spec.variant == "linen":
                model, loss = linen_train_step(model, x_all[idx], y_all[idx])  # state in, new state out
            else:
                loss = step(x_all[idx], y_all[idx])  # model and optimizer are updated in place
            rec.step(loss)  # steps run asynchronously; reading the loss waits for this one
        rec.epoch(model)
    return model


# %% evaluate
@nnx.jit
def nnx_logits(model, x):
    return model(x)


@jax.jit
def linen_logits(state, x):
    return state.apply_fn({"params": state.params}, x)


def predict(model, x):
    logits = linen_logits(model, x) if isinstance(model, train_state.TrainState) else nnx_logits(model, x)
    return np.asarray(logits, np.float32)  # float32 logits for every precision


# %% save
def save(model, path):
    """msgpack via flax.serialization: linen's params, or nnx's parameter state as a plain dict."""
    params = model.params if isinstance(model, train_state.TrainState) else nnx.to_pure_dict(nnx.state(model))
    with open(path + ".msgpack", "wb") as f:
        f.write(serialization.to_bytes(params))  # concept: save-load


def restore(model, path):
    """Fill a freshly built model (the structure) with the saved numbers."""
    with open(path + ".msgpack", "rb") as f:
        data = f.read()
    if isinstance(model, train_state.TrainState):
        return model.replace(params=serialization.from_bytes(model.params, data))  # concept: save-load
    state = nnx.state(model)
    nnx.replace_by_pure_dict(state, serialization.from_bytes(nnx.to_pure_dict(state), data))  # concept: save-load
    nnx.update(model, state)
    return model


def load(spec, path):
    return restore(build_model(spec), path)


# %% export
def export_onnx(model, path, example):
    from jax2onnx import to_onnx  # the exporter is imported only to export (it is not the framework)

    # jax2onnx takes an nnx Module as it is; a linen model is a function of x with its params bound
    fn = functools.partial(linen_logits, model) if isinstance(model, train_state.TrainState) else model
    to_onnx(fn, [("B", *example.shape[1:])], return_mode="file", output_path=path)  # concept: export
    return {"exporter": "jax2onnx.to_onnx"}


# %% deploy
def export_deploy(model, path, example):
    # jax.export traces a function of x; a linen model binds its params (not the TrainState, whose optimizer
    # moments would become constants too), an nnx Module is called as is (its parameters, read while tracing,
    # become constants of the exported program)
    linen = isinstance(model, train_state.TrainState)
    fn = functools.partial(model.apply_fn, {"params": model.params}) if linen else model
    return export_function(fn, path, example)  # concept: deploy
