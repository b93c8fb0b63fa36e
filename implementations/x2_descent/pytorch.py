"""Gradient descent on f(x) = x² in PyTorch: autograd on a leaf tensor, three ways to update it."""
import torch

VARIANTS = {
    "inplace": "update in place under torch.no_grad(), then x.grad.zero_()",
    "new_leaf": "x = x - lr * x.grad makes a new tensor: detach it and requires_grad_() again",
    "optim": "torch.optim.SGD does the update and zero_grad",
}


# %% model
def f(x):
    return x**2  # concept: loss


# %% step
# concept-absent: jit: every variant runs eagerly, op by op (mnist_mlp/pytorch.py shows torch.compile)
def step_inplace(x, lr):
    loss = f(x)
    loss.backward()  # x.grad = 2x  # concept: gradient
    with torch.no_grad():  # an update must not be recorded in the graph
        x -= lr * x.grad  # concept: step
    x.grad.zero_()  # gradients accumulate in PyTorch: reset them every step  # concept: zero-grad
    return x


def step_new_leaf(x, lr):
    loss = f(x)
    loss.backward()
    x = (x - lr * x.grad).detach()  # a new tensor, not a leaf of any graph...  # concept: step
    return x.requires_grad_()  # ...so make it a leaf that records gradients again


# %% train
def train(spec, rec):
    x = torch.tensor(spec.x0, dtype=torch.float32, requires_grad=True)  # concept: params
    trajectory = [x.item()]
    if spec.variant == "optim":
        optimizer = torch.optim.SGD([x], lr=spec.lr)  # concept: optimizer
        for _ in range(spec.steps):
            optimizer.zero_grad()  # concept: zero-grad
            f(x).backward()  # concept: gradient
            optimizer.step()  # concept: step
            trajectory.append(x.item())
            rec.step(x.item())
        return trajectory
    step = step_new_leaf if spec.variant == "new_leaf" else step_inplace
    for _ in range(spec.steps):
        x = step(x, spec.lr)
        trajectory.append(x.item())
        rec.step(x.item())
    return trajectory
