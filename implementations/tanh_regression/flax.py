"""Tanh regression d -> H (tanh) -> 1 in Flax nnx: an nnx.Module holding two nnx.Linear, or nnx.Sequential;
nnx.Optimizer (optax SGD or Adam) updates it in place inside an @nnx.jit step."""
from flax import nnx

# the loss (MSE), the jitted step, predict, save and export are linear regression's nnx.Linear column's
from implementations.linear_regression.flax import (  # noqa: F401  # concepts-from: linear_regression/flax.py
    count_params, export_onnx, predict, restore, save, train_step)
from implementations.mnist_mlp.flax import with_init
from implementations.tanh_regression.jax import optimizer  # optax.sgd or optax.adam

VARIANTS = {
    "modules": "class TanhRegressor(nnx.Module): nnx.Linear attributes, nnx.tanh in __call__",
    "sequential": "nnx.Sequential(nnx.Linear, nnx.tanh, nnx.Linear)",
}


# %% model
# nnx collects state by walking the object graph: every nnx.Param reachable from the model through its
# attributes (or nnx.Sequential's layers) is part of nnx.state(model, nnx.Param), and of the gradient
class TanhRegressor(nnx.Module):
    def __init__(self, d, hidden, *, rngs):
        self.hidden = nnx.Linear(d, hidden, rngs=rngs)  # concept: params
        self.out = nnx.Linear(hidden, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(nnx.tanh(self.hidden(x)))  # concept: forward


def build_model(spec):
    rngs = nnx.Rngs(spec.seed)  # explicit random keys: LeCun-normal kernels, zero biases  # concept: seed
    if spec.variant == "sequential":
        model = nnx.Sequential(nnx.Linear(spec.d, spec.hidden, rngs=rngs), nnx.tanh,  # concept: params
                               nnx.Linear(spec.hidden, 1, rngs=rngs))
        return with_init(model, [model.layers[0], model.layers[2]], spec)
    model = TanhRegressor(spec.d, spec.hidden, rngs=rngs)
    return with_init(model, [model.hidden, model.out], spec)


# %% train
# concept-absent: device: arrays go to JAX's default device, the GPU when one is visible
def train(model, spec, data, rec):
    opt = nnx.Optimizer(model, optimizer(spec), wrt=nnx.Param)  # concept: optimizer
    step = nnx.cached_partial(train_step, model, opt)  # walks the object graph once, not every step
    for epoch in range(spec.epochs):
        for x, y in data.batches(epoch):  # concept: batching
            rec.step(step(x, y))  # reading the loss waits for the asynchronously dispatched step
        rec.epoch(model)
    return model


# %% save
def load(spec, path):
    return restore(build_model(spec), path)
