"""Gradient descent on f(x) = x² in JAX: jax.grad turns f into its derivative, a pure function."""
import jax
import jax.numpy as jnp
import optax

VARIANTS = {
    "grad": "x = x - lr * jax.grad(f)(x) in a plain Python loop, every operation dispatched eagerly",
    "jit": "the same update compiled once as a @jax.jit step",
    "optax": "optax.sgd: tx.update turns the gradient into an update, optax.apply_updates applies it",
}


# %% model
def f(x):
    return x**2  # concept: loss


# %% step
def step(x, lr):
    # concept-absent: zero-grad: jax.grad(f) is a new function x -> 2x: no tape, no .grad, nothing to zero
    return x - lr * jax.grad(f)(x)  # concept: gradient, step


jit_step = jax.jit(step)  # traced on the first call, then one compiled XLA computation per call  # concept: jit


def optax_step(x, opt_state, tx):
    updates, opt_state = tx.update(jax.grad(f)(x), opt_state)  # sgd: updates = -lr * grad  # concept: gradient
    return optax.apply_updates(x, updates), opt_state  # arrays are immutable: a new x comes back  # concept: step


# %% train
def train(spec, rec):
    x = jnp.float32(spec.x0)  # concept: params
    trajectory = [float(x)]
    tx = optax.sgd(spec.lr)  # concept: optimizer
    opt_state = tx.init(x)  # concept: optimizer
    for _ in range(spec.steps):
        if spec.variant == "optax":
            x, opt_state = optax_step(x, opt_state, tx)
        else:
            x = (jit_step if spec.variant == "jit" else step)(x, spec.lr)
        trajectory.append(float(x))
        rec.step(x)
    return trajectory
