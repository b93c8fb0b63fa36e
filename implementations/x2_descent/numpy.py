"""Gradient descent on f(x) = x² by hand: the derivative 2x written out, no framework."""
import numpy as np

VARIANTS = {"manual": "the gradient 2x written by hand"}


# %% model
def f(x):
    return x**2  # concept: loss


def grad_f(x):
    # concept-absent: zero-grad: grad_f returns a new value every step: nothing accumulates
    return 2 * x  # concept: gradient


# %% train
def train(spec, rec):
    x = np.float32(spec.x0)  # concept: params
    trajectory = [float(x)]
    # concept-absent: optimizer, jit: plain NumPy: the update is written out and runs op by op
    for _ in range(spec.steps):
        x = x - np.float32(spec.lr) * grad_f(x)  # concept: step
        trajectory.append(float(x))
        rec.step(x)
    return trajectory
