"""Gradient descent on f(x) = x² by hand: the derivative 2x written out, no framework."""
import numpy as np

VARIANTS = {"manual": "the gradient 2x written by hand"}


# %% model
def f(x):
    return x**2


def grad_f(x):
    return 2 * x


# %% train
def train(spec, rec):
    x = np.float32(spec.x0)
    trajectory = [float(x)]
    for _ in range(spec.steps):
        x = x - np.float32(spec.lr) * grad_f(x)
        trajectory.append(float(x))
        rec.step(x)
    return trajectory
