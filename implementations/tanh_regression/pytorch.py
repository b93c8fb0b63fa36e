"""Tanh regression d -> H (tanh) -> 1 in PyTorch: two nn.Linear layers, either as attributes of an
nn.Module or inside nn.Sequential; torch.optim.SGD or Adam; the five-line training loop."""
import torch
from torch import nn

from harness.matrix.init import shared_params
# the loss (MSE), step and export of linear regression's nn.Linear variant; predict and save as the MLP's
from implementations.linear_regression.pytorch import (  # noqa: F401  # concepts-from: linear_regression/pytorch.py
    export_onnx, loss_fn, train_step_optim as train_step)
from implementations.mnist_mlp.pytorch import (  # noqa: F401
    copy_weights, count_params, device_of, predict, save)

VARIANTS = {
    "modules": "class TanhRegressor(nn.Module): nn.Linear attributes, torch.tanh in forward",
    "sequential": "nn.Sequential(nn.Linear, nn.Tanh(), nn.Linear): the container calls them in order",
}


# %% model
class TanhRegressor(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        # assigning a Module to an attribute registers it: model.parameters() walks every submodule
        self.hidden = nn.Linear(d, hidden)  # weight [out, in]  # concept: params
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))  # concept: forward


def build_model(spec):
    torch.manual_seed(spec.seed)  # nn.Linear draws its initial weights from torch's global generator  # concept: seed
    if spec.variant == "sequential":  # its layers are registered as submodules "0", "1", "2"
        model = nn.Sequential(nn.Linear(spec.d, spec.hidden), nn.Tanh(), nn.Linear(spec.hidden, 1))  # concept: params
    else:
        model = TanhRegressor(spec.d, spec.hidden)
    if spec.init == "shared":  # the spec's weights; nn.Linear stores its kernel as [out, in]
        copy_weights(model, [(p["kernel"].T, p["bias"]) for p in shared_params(spec)])
    return model.to(device_of(spec))  # concept: device


# %% step
def optimizer_settings(spec):
    eps = 1e-8 if spec.adam_eps is None else spec.adam_eps  # torch's default: eps outside the sqrt
    return dict(optimizer=spec.optimizer, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=eps)


def make_optimizer(parameters, optimizer, lr, betas, eps):
    if optimizer == "adam":
        return torch.optim.Adam(parameters, lr=lr, betas=betas, eps=eps)  # concept: optimizer
    return torch.optim.SGD(parameters, lr=lr)  # concept: optimizer


# %% train
# concept-absent: jit: eager, as most PyTorch code runs (mnist_mlp/pytorch.py shows torch.compile)
def train(model, spec, data, rec):
    optimizer = make_optimizer(model.parameters(), **optimizer_settings(spec))
    device = device_of(spec)
    x_all, y_all = torch.from_numpy(data.x_train).to(device), torch.from_numpy(data.y_train).to(device)
    model.train()  # concept: mode
    for epoch in range(spec.epochs):
        for idx in torch.from_numpy(data.epoch_batches(epoch)):  # concept: batching
            rec.step(train_step(model, optimizer, x_all[idx], y_all[idx]).item())  # .item() waits for the step
        rec.epoch(model)
    return model


# %% save
def load(spec, path):
    model = build_model(spec)
    model.load_state_dict(torch.load(path + ".pt", weights_only=True))  # concept: save-load
    return model
