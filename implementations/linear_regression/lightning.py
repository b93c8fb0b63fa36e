"""Linear regression Y = XA + b in Lightning: nn.Linear in a LightningModule, SGD, Trainer.fit."""
import lightning as L
import torch
from torch import nn

# the Trainer with the harness's batch order, predict, save and export are the MNIST MLP's
from implementations.mnist_mlp.lightning import (  # noqa: F401  # concepts-from: mnist_mlp/lightning.py
    count_params, export_onnx, predict, save, train)

VARIANTS = {"trainer": "LightningModule (nn.Linear, MSE, SGD) + Trainer.fit"}


# %% model
class LinearRegression(L.LightningModule):
    def __init__(self, d, lr):
        super().__init__()
        self.save_hyperparameters()  # d and lr: load_from_checkpoint rebuilds the module from them
        self.linear = nn.Linear(d, 1)  # weight is A transposed: [out, in]  # concept: params
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x):
        return self.linear(x)  # concept: forward

    # %% step
    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)  # mean over the samples  # concept: loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)  # concept: optimizer


# %% model
def build_model(spec):
    return LinearRegression(spec.d, spec.lr)


# %% save
def load(spec, path):
    return LinearRegression.load_from_checkpoint(path + ".ckpt", weights_only=True)  # concept: save-load
