"""Linear regression Y = XA + b by hand: the MSE gradient written out, no framework, no autograd.

This is the reference every framework column is checked against: for MSE = mean((XA + b - Y)²),
dMSE/dA = 2/n · Xᵀ(XA + b - Y) and dMSE/db = 2/n · Σ(XA + b - Y).
"""
import numpy as np

VARIANTS = {"manual": "gradients derived by hand, plain SGD"}


# %% model
def build_model(spec):
    return {"A": np.zeros((spec.d, 1), np.float32), "b": np.zeros((1,), np.float32)}


def count_params(model):
    return sum(p.size for p in model.values())


def forward(model, x):
    return x @ model["A"] + model["b"]


# %% loss
def loss_fn(model, x, y):
    return np.mean((forward(model, x) - y) ** 2)


# %% step
def train_step(model, x, y, lr):
    residual = forward(model, x) - y  # (n, 1)
    grad_a = 2.0 / len(x) * x.T @ residual
    grad_b = 2.0 / len(x) * residual.sum(axis=0)
    model["A"] -= np.float32(lr) * grad_a
    model["b"] -= np.float32(lr) * grad_b
    return np.mean(residual**2)  # the loss before the update


# %% train
def train(model, spec, data, rec):
    for epoch in range(spec.epochs):
        for x, y in data.batches(epoch):
            rec.step(train_step(model, x, y, spec.lr))
        rec.epoch(model)
    return model


# %% evaluate
def predict(model, x):
    return forward(model, np.asarray(x, np.float32))


# %% save
def save(model, path):
    np.savez(path + ".npz", **model)


def load(spec, path):
    with np.load(path + ".npz") as saved:
        return {name: saved[name] for name in saved.files}
