"""Linear regression Y = XA + b in PyTorch: autograd fills A.grad and b.grad, four ways to apply them.

The three hand-written updates differ only in how the new A is kept out of autograd's graph: a new
tensor, a detached copy updated in place, or the same tensor updated in place; the fourth lets
nn.Linear and torch.optim.SGD do it, and the fifth steps that optimizer once every k samples (gradient
accumulation: the course's mini-batch built from single-sample gradients).
"""
import numpy as np
import torch
from torch import nn

VARIANTS = {
    "new_leaf": "A = (A - lr * A.grad).detach().requires_grad_(): a fresh leaf tensor every step",
    "clone_detach": "A.clone().detach(): a copy outside the graph, updated in place, made a leaf again",
    "data": "A.data -= lr * A.grad: update the storage behind autograd's back, then zero A.grad",
    "optim": "nn.Linear + torch.optim.SGD: zero_grad, backward, step",
    "accumulate": "nn.Linear + SGD stepping once every k samples: a mini-batch's update from k single-sample "
                  "backward passes (gradient accumulation; mini-batch mode only)",
}


# %% model
def build_model(spec):
    """A (d, 1) and b (1,), zeros: two leaf tensors, or an nn.Linear for the optimizer variant."""
    device = torch.device("cuda" if spec.device == "gpu" else "cpu")  # concept: device
    if spec.variant in ("optim", "accumulate"):
        model = nn.Linear(spec.d, 1, device=device)  # stores A transposed: weight is [out, in]
        nn.init.zeros_(model.weight)
        nn.init.zeros_(model.bias)
        return model
    # requires_grad=True makes them leaves of every graph they enter: backward() fills their .grad
    return {"A": torch.zeros(spec.d, 1, device=device, requires_grad=True),  # concept: params
            "b": torch.zeros(1, device=device, requires_grad=True)}


def parameters(model):
    return list(model.parameters()) if isinstance(model, nn.Module) else list(model.values())  # concept: params


def count_params(model):
    return sum(p.numel() for p in parameters(model))


def forward(model, x):
    if isinstance(model, nn.Module):
        return model(x)  # concept: forward
    return x @ model["A"] + model["b"]  # concept: forward


# %% loss
loss_fn = nn.MSELoss()  # mean over the samples  # concept: loss


# %% step
def update_new_leaf(p, lr):
    # p - lr * p.grad is recorded in the graph like any computation: detach it, make it a leaf again
    return (p - lr * p.grad).detach().requires_grad_()  # concept: step


def update_clone_detach(p, lr):
    p_next = p.clone().detach()  # a copy with no history (torch's advice instead of torch.tensor(p))
    p_next -= lr * p.grad  # in place on a tensor outside the graph: nothing is recorded  # concept: step
    return p_next.requires_grad_()


def update_data(p, lr):
    p.data -= lr * p.grad  # .data is the same storage, invisible to autograd (today: torch.no_grad())
    p.grad.zero_()  # the same leaf is used again, and gradients accumulate: clear them  # concept: zero-grad
    return p


UPDATES = {"new_leaf": update_new_leaf, "clone_detach": update_clone_detach, "data": update_data}


def train_step(params, x, y, lr, update):
    loss = loss_fn(forward(params, x), y)
    loss.backward()  # fills params["A"].grad and params["b"].grad  # concept: gradient
    return {name: update(p, lr) for name, p in params.items()}, loss


def train_step_optim(model, optimizer, x, y):
    optimizer.zero_grad()  # concept: zero-grad
    loss = loss_fn(model(x), y)
    loss.backward()  # concept: gradient
    optimizer.step()  # p -= lr * p.grad under torch.no_grad(), for every parameter it was given  # concept: step
    return loss


def train_step_accumulate(model, optimizer, x, y):
    """The mini-batch's update built from its samples one at a time: backward() adds to .grad (which the
    other variants clear for that reason), so k backward passes of loss/k leave the mean gradient of the
    k samples in .grad, and one optimizer.step() applies it: the plain mini-batch step, in k pieces."""
    optimizer.zero_grad()  # once per k samples, not once per backward  # concept: zero-grad
    loss = 0.0
    for xi, yi in zip(x.split(1), y.split(1)):  # one sample at a time, as if memory held no more
        sample_loss = loss_fn(model(xi), yi) / len(x)  # 1/k: the k gradients add up to the mean's
        sample_loss.backward()  # .grad += this sample's gradient  # concept: gradient
        loss += sample_loss.detach()
    optimizer.step()  # concept: step
    return loss  # the mini-batch's mean loss


# %% train
# concept-absent: jit: every variant runs eagerly (mnist_mlp/pytorch.py shows torch.compile)
def train(model, spec, data, rec):
    device = parameters(model)[0].device
    if spec.variant in ("optim", "accumulate"):
        optimizer = torch.optim.SGD(model.parameters(), lr=spec.lr)  # concept: optimizer
    step = {"optim": train_step_optim, "accumulate": train_step_accumulate}.get(spec.variant)
    for epoch in range(spec.epochs):
        for x, y in data.batches(epoch):  # concept: batching
            x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)  # concept: device
            if step:
                loss = step(model, optimizer, x, y)
            else:
                model, loss = train_step(model, x, y, spec.lr, UPDATES[spec.variant])
            rec.step(loss.item())  # .item() waits for the step to finish
        rec.epoch(model)
    return model


# %% evaluate
@torch.no_grad()
def predict(model, x):
    x = torch.from_numpy(np.asarray(x, dtype=np.float32)).to(parameters(model)[0].device)
    return forward(model, x).cpu().numpy()


# %% save
def save(model, path):
    torch.save(model.state_dict() if isinstance(model, nn.Module) else model, path + ".pt")  # concept: save-load


def load(spec, path):
    state = torch.load(path + ".pt", weights_only=True)  # tensors keep requires_grad: leaves again
    if spec.variant not in ("optim", "accumulate"):
        return state
    model = build_model(spec)
    model.load_state_dict(state)  # concept: save-load
    return model


# %% export
def export_onnx(model, path, example):
    if not isinstance(model, nn.Module):  # the exporter traces a module: put A and b into an nn.Linear
        linear = nn.Linear(*model["A"].shape, device=model["A"].device)
        with torch.no_grad():
            linear.weight.copy_(model["A"].T)
            linear.bias.copy_(model["b"])
        model = linear
    example = torch.from_numpy(example).to(parameters(model)[0].device)
    batch = torch.export.Dim("batch")  # dynamic_shapes: one entry per forward argument, axis 0 dynamic
    model.eval()  # concept: mode
    torch.onnx.export(model, (example,), path, dynamo=True, input_names=["x"], output_names=["y"],
                      dynamic_shapes=({0: batch},))  # concept: export
    return {"exporter": "torch.onnx.export (dynamo)"}
