"""MNIST MLP in PyTorch: an nn.Module, Adam, and the five-line training loop every PyTorch user knows."""
import ctypes
import os
import sys

import numpy as np
import torch
from torch import nn

from harness.matrix.init import shared_params

VARIANTS = {
    "eager": "in-memory tensors sliced per batch, eager mode",
    "dataloader": "TensorDataset + DataLoader with the harness's batch order (a batch sampler)",
    "compile": "torch.compile(model): first step includes the Inductor compile",
    "tensorboard": "the eager loop, logging to TensorBoard: torch.utils.tensorboard.SummaryWriter.add_scalar",
    "tuned": "the eager loop with Adam(fused=True), and glibc's malloc told to keep freed buffers (mallopt)",
}


# %% model
class MLP(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        layers = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]  # concept: params
        self.layers = nn.Sequential(*layers[:-1])  # no ReLU after the last layer: it returns logits

    def forward(self, x):
        return self.layers(x)  # concept: forward


def build_model(spec):
    torch.manual_seed(spec.seed)  # nn.Linear draws its initial weights from torch's global generator  # concept: seed
    model = MLP((spec.input_size, *spec.hidden, spec.num_classes))
    if spec.init == "shared":  # the spec's weights; nn.Linear stores its kernel as [out, in]
        copy_weights(model, [(p["kernel"].T, p["bias"]) for p in shared_params(spec)])
    return model.to(device_of(spec), PARAM_DTYPES[spec.precision])  # concept: device


def copy_weights(model, weights):
    """(weight, bias) numpy pairs, already in torch's layout, into the layers that have them, in order."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    with torch.no_grad():
        for layer, (weight, bias) in zip(layers, weights, strict=True):
            layer.weight.copy_(torch.from_numpy(weight))
            layer.bias.copy_(torch.from_numpy(bias))


def device_of(spec):
    return torch.device("cuda" if spec.device == "gpu" else "cpu")  # concept: device


def count_params(model):
    return sum(p.numel() for p in model.parameters())


# %% precision
# "mixed": float32 weights, and autocast runs each matmul in bfloat16 (its own cast of weights and inputs);
# "bf16": build_model stores the weights, and so Adam's moments, in bfloat16
PARAM_DTYPES = {"fp32": torch.float32, "mixed": torch.float32, "bf16": torch.bfloat16}  # concept: precision


def forward(model, x, spec):
    """The training forward pass in the spec's precision: the logits, in the dtype they were computed in."""
    if spec.precision == "mixed":
        with torch.autocast(device_of(spec).type, dtype=torch.bfloat16):  # concept: precision
            return model(x)
    return model(x.to(PARAM_DTYPES[spec.precision]))  # bf16: a matmul takes both operands in one dtype


def precision_used(model, spec, x):
    """The weights' dtype as stored, and that of the logits the training forward gives on x."""
    with torch.no_grad():
        logits = forward(model, torch.from_numpy(x).to(device_of(spec)), spec)
    return {"params": next(model.parameters()).dtype, "compute": logits.dtype}


# %% loss
loss_fn = nn.CrossEntropyLoss()  # softmax + negative log-likelihood on logits, mean over the batch  # concept: loss


# %% step
def train_step(model, optimizer, x, y, spec):
    optimizer.zero_grad()  # gradients accumulate in PyTorch: clear them first  # concept: zero-grad
    loss = loss_fn(forward(model, x, spec).float(), y)  # the loss in float32 whatever the forward's precision
    loss.backward()  # concept: gradient
    optimizer.step()  # concept: step
    return loss


# %% train
def train(model, spec, data, rec):
    if spec.variant == "tuned":
        return train_tuned(model, spec, data, rec)  # below, in its own cell
    device = device_of(spec)
    eps = 1e-8 if spec.adam_eps is None else spec.adam_eps  # torch's default: eps outside the sqrt
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr, betas=(spec.beta1, spec.beta2),
                                 eps=eps)  # concept: optimizer
    step_model = torch.compile(model) if spec.variant == "compile" else model  # concept: jit
    x_all = torch.from_numpy(data.x_train).to(device)  # concept: device
    y_all = torch.from_numpy(data.y_train).to(device)
    writer = None
    if spec.variant == "tensorboard":  # event files in the cell's own folder (SummaryWriter's default: runs/)
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

        writer = SummaryWriter(os.path.join(os.environ.get("DLROSETTA_CELL_DIR", "."), "tensorboard"))
    model.train()  # concept: mode
    for epoch in range(spec.epochs):
        if spec.variant == "dataloader":
            # the harness's batch order as a batch sampler: DataLoader then yields the same batches
            loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_all, y_all),  # concept: batching
                                                 batch_sampler=data.epoch_batches(epoch).tolist())
            batches = iter(loader)
        else:
            batches = ((x_all[idx], y_all[idx]) for idx in torch.from_numpy(data.epoch_batches(epoch)))
        for i, (x, y) in enumerate(batches):
            loss = train_step(step_model, optimizer, x, y, spec).item()  # .item() waits for the step to finish
            rec.step(loss)
            if writer is not None:  # inside the timed steps: add_scalar queues it, a background thread writes
                writer.add_scalar("loss/train", loss, epoch * data.steps_per_epoch + i)
        if writer is not None:  # outside the step times (inside the epoch's); before rec.epoch, which may stop
            writer.add_scalar("accuracy/test", accuracy(model, data.x_test, data.y_test), epoch)
            writer.flush()
        rec.epoch(model)
    if writer is not None:
        writer.close()
    return model


# %% evaluate
@torch.no_grad()
def predict(model, x):
    model.eval()  # concept: mode
    weight = next(model.parameters())  # the inputs in the weights' device and dtype
    logits = model(torch.from_numpy(np.asarray(x, dtype=np.float32)).to(weight.device, weight.dtype))
    model.train()
    return logits.float().cpu().numpy()  # float32 logits for every precision: numpy has no bfloat16


def accuracy(model, x, y):
    return float((predict(model, x).argmax(axis=1) == y).mean())


# %% save
def save(model, path):
    torch.save(model.state_dict(), path + ".pt")  # concept: save-load


def load(spec, path):
    model = build_model(spec)
    model.load_state_dict(torch.load(path + ".pt", weights_only=True))  # concept: save-load
    return model


# %% export
def export_onnx(model, path, example):
    model.eval()
    batch = torch.export.Dim("batch")
    example = torch.from_numpy(example).to(next(model.parameters()).device)
    torch.onnx.export(model, (example,), path, dynamo=True,  # concept: export
                      input_names=["x"], output_names=["logits"], dynamic_shapes={"x": {0: batch}})
    return {"exporter": "torch.onnx.export (dynamo)"}


# %% deploy
def export_deploy(model, path, example):
    # torch.export traces forward once into a graph of ATen ops with the weights inside: the .pt2 file
    # loads without this file's MLP class (ONNX above is the same graph for another runtime)
    model.eval()
    example = torch.from_numpy(example).to(next(model.parameters()).device)
    batch = torch.export.Dim("batch")  # a symbolic size: one program for every batch
    program = torch.export.export(model, (example,), dynamic_shapes={"x": {0: batch}})  # by forward's arg name
    torch.export.save(program, path + ".pt2")  # concept: deploy
    return {"exporter": "torch.export.export + torch.export.save (.pt2)", "file": path + ".pt2"}


def load_deploy(file):
    module = torch.export.load(file).module()  # an nn.Module again, the graph's own code  # concept: deploy
    device = next(module.parameters()).device
    return lambda x: module(torch.from_numpy(x).to(device)).detach().cpu().numpy()


# %% tuned-train
# The eager loop, made fast by two changes (2 threads, batch 128, against eager in the same run):
# - Adam(fused=True): one C++ kernel per parameter for the whole update, where the default CPU Adam
#   runs ~10 tensor ops per parameter; MLP step 1.44 -> 1.2 ms (the CNN, with 7x fewer weights, ~2 %).
# - glibc's malloc keeps freed buffers: by default it gives a large block (a conv activation is 11 MB)
#   back to the kernel when torch frees it and page-faults it in again on the next step. PyTorch's CPU
#   tuning guide swaps in jemalloc/tcmalloc for this; mallopt does it from inside the process.
#   CNN step 25 -> 12 ms; the MLP's buffers are small and the MLP step is unchanged.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>


def keep_freed_memory():
    if sys.platform == "linux":  # glibc's mallopt; both settings also switch off its adaptive thresholds
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)  # blocks under 32 MB come from the heap, not mmap
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)  # and freed heap stays in the process (up to 1 GB)


def train_tuned(model, spec, data, rec):
    keep_freed_memory()
    eps = 1e-8 if spec.adam_eps is None else spec.adam_eps
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=eps,
                                 fused=True)
    x_all = torch.from_numpy(data.x_train).to(device_of(spec))
    y_all = torch.from_numpy(data.y_train).to(device_of(spec))
    model.train()
    for epoch in range(spec.epochs):
        for idx in torch.from_numpy(data.epoch_batches(epoch)):
            rec.step(train_step(model, optimizer, x_all[idx], y_all[idx], spec).item())
        rec.epoch(model)
    return model
