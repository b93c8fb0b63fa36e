"""Linear regression Y = XA + b by hand: the MSE gradient written out, no framework, no autograd.

This is the reference every framework column is checked against: for MSE = mean((XA + b - Y)²),
dMSE/dA = 2/n · Xᵀ(XA + b - Y) and dMSE/db = 2/n · Σ(XA + b - Y).
"""
import numpy as np

VARIANTS = {"manual": "gradients derived by hand, plain SGD"}


# %% model
def build_model(spec):
    return {"A": np.zeros((spec.d, 1), np.float32), "b": np.zeros((1,), np.float32)}  # concept: params


def count_params(model):
    return sum(p.size for p in model.values())


# concept-absent: mode: plain arrays have no mode: a matmul is the same in training and inference
def forward(model, x):
    return x @ model["A"] + model["b"]  # concept: forward


# %% loss
def loss_fn(model, x, y):
    return np.mean((forward(model, x) - y) ** 2)  # concept: loss


# %% step
# concept-absent: zero-grad, optimizer: plain SGD by hand: new gradient arrays each step, no optimizer
def train_step(model, x, y, lr):
    residual = forward(model, x) - y  # (n, 1)
    grad_a = 2.0 / len(x) * x.T @ residual  # concept: gradient
    grad_b = 2.0 / len(x) * residual.sum(axis=0)  # concept: gradient
    model["A"] -= np.float32(lr) * grad_a  # concept: step
    model["b"] -= np.float32(lr) * grad_b  # concept: step
    return np.mean(residual**2)  # the loss before the update


# %% train
# concept-absent: jit, device: NumPy runs each operation as it is called, on the CPU
def train(model, spec, data, rec):
    for epoch in range(spec.epochs):
        for x, y in data.batches(epoch):  # concept: batching
            rec.step(train_step(model, x, y, spec.lr))
        rec.epoch(model)
    return model


# %% evaluate
def predict(model, x):
    return forward(model, np.asarray(x, np.float32))


# %% save
# concept-absent: export: the NumPy reference has no graph for an ONNX exporter to trace
def save(model, path):
    np.savez(path + ".npz", **model)  # concept: save-load


def load(spec, path):
    with np.load(path + ".npz") as saved:  # concept: save-load
        return {name: saved[name] for name in saved.files}
