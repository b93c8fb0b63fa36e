"""Tanh regression d -> H (tanh) -> 1 in NumPy: backpropagation written by hand, no framework, no autograd.

Each layer keeps what its forward pass saw and turns dL/d(output) into dL/d(input), storing the
gradients of its own parameters on the way: for y = xW + b, dL/dW = xᵀ·g, dL/db = Σ g, dL/dx = g·Wᵀ;
for h = tanh(z), dL/dz = g·(1 - h²). The model runs the layers forwards, then backwards in reverse.
"""
import numpy as np

from harness.matrix.init import shared_params

VARIANTS = {
    "modules": "Dense and Tanh objects, each with forward and backward, named as the model's attributes",
    "sequential": "the same layers in a Sequential container: forward in order, backward in reverse",
}


# %% model
class Dense:
    def __init__(self, kernel, bias):
        self.params = {"kernel": kernel, "bias": bias}  # kernel [in, out]  # concept: params
        self.grads = {}

    def forward(self, x):
        self.x = x  # the input, kept for the backward pass
        return x @ self.params["kernel"] + self.params["bias"]

    def backward(self, grad):  # grad: dL/d(output), (n, out)
        self.grads = {"kernel": self.x.T @ grad, "bias": grad.sum(axis=0)}  # concept: gradient
        return grad @ self.params["kernel"].T  # dL/d(input)


class Tanh:
    params = {}  # no parameters

    def forward(self, z):
        self.h = np.tanh(z)
        return self.h

    def backward(self, grad):
        return grad * (1.0 - self.h**2)  # tanh'(z) = 1 - tanh(z)²


class TanhRegressor:
    """The "modules" variant: each layer an attribute; `layers` lists them for the optimizer."""

    def __init__(self, hidden, out):
        self.hidden, self.act, self.out = hidden, Tanh(), out

    @property
    def layers(self):
        return [self.hidden, self.act, self.out]

    def forward(self, x):
        return self.out.forward(self.act.forward(self.hidden.forward(x)))  # concept: forward

    def backward(self, grad):
        self.hidden.backward(self.act.backward(self.out.backward(grad)))


class Sequential:
    """The "sequential" variant: a container that runs any list of layers, forwards and backwards."""

    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)  # concept: forward
        return x

    def backward(self, grad):
        for layer in reversed(self.layers):  # the chain rule, from the loss back to the input
            grad = layer.backward(grad)


def build_model(spec):
    # concept-absent: seed: the spec's Glorot-uniform weights (harness.matrix.init), drawn from its seed
    hidden, out = (Dense(p["kernel"].copy(), p["bias"].copy()) for p in shared_params(spec))
    if spec.variant == "sequential":
        return Sequential(hidden, Tanh(), out)
    return TanhRegressor(hidden, out)


def parameter_layers(model):
    return [layer for layer in model.layers if layer.params]  # concept: params


def count_params(model):
    return sum(p.size for layer in parameter_layers(model) for p in layer.params.values())


# %% loss
def loss_fn(prediction, y):
    """MSE and its gradient dL/d(prediction) = 2 (prediction - y) / n."""
    residual = prediction - y
    return np.mean(residual**2), 2.0 / residual.size * residual  # concept: loss


# %% step
class SGD:
    def __init__(self, lr):
        self.lr = np.float32(lr)

    def step(self, layers):
        for layer in layers:
            for name, grad in layer.grads.items():
                layer.params[name] -= self.lr * grad  # concept: step


class Adam:
    """p -= lr · m̂ / (√v̂ + eps), m and v running means of g and g² (torch's placement of eps)."""

    def __init__(self, lr, beta1, beta2, eps):
        self.lr, self.b1, self.b2, self.eps, self.t, self.m, self.v = lr, beta1, beta2, eps, 0, {}, {}

    def step(self, layers):
        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t  # bias corrections
        for i, layer in enumerate(layers):
            for name, grad in layer.grads.items():
                key = (i, name)
                self.m[key] = self.b1 * self.m.get(key, 0.0) + (1 - self.b1) * grad
                self.v[key] = self.b2 * self.v.get(key, 0.0) + (1 - self.b2) * grad * grad
                update = self.lr * (self.m[key] / c1) / (np.sqrt(self.v[key] / c2) + self.eps)
                layer.params[name] -= update.astype(np.float32)  # concept: step


def make_optimizer(spec):  # concept: optimizer
    if spec.optimizer == "adam":
        return Adam(spec.lr, spec.beta1, spec.beta2, 1e-8 if spec.adam_eps is None else spec.adam_eps)
    return SGD(spec.lr)


# concept-absent: zero-grad: each backward pass replaces the layers' gradients: nothing accumulates
def train_step(model, optimizer, x, y):
    loss, grad = loss_fn(model.forward(x), y)
    model.backward(grad)  # concept: gradient
    optimizer.step(parameter_layers(model))
    return loss  # the loss before the update


# %% train
# concept-absent: jit, device: NumPy runs each operation as it is called, on the CPU
def train(model, spec, data, rec):
    optimizer = make_optimizer(spec)
    for epoch in range(spec.epochs):
        for x, y in data.batches(epoch):  # concept: batching
            rec.step(train_step(model, optimizer, x, y))
        rec.epoch(model)
    return model


# %% evaluate
# concept-absent: mode: no layer here behaves differently in training and inference
def predict(model, x):
    return model.forward(np.asarray(x, np.float32))


# %% save
# concept-absent: export: the NumPy reference has no graph for an ONNX exporter to trace
def save(model, path):
    arrays = {f"{i}.{name}": value for i, layer in enumerate(parameter_layers(model))
              for name, value in layer.params.items()}
    np.savez(path + ".npz", **arrays)  # concept: save-load


def load(spec, path):
    model = build_model(spec)
    with np.load(path + ".npz") as saved:  # concept: save-load
        for i, layer in enumerate(parameter_layers(model)):
            layer.params = {name: saved[f"{i}.{name}"] for name in layer.params}
    return model
