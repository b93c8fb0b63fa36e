"""Tanh regression d -> H (tanh) -> 1 in Lightning: the PyTorch column's network (its nn.Module or its
nn.Sequential) inside a LightningModule; Trainer.fit owns the loop."""
import lightning as L
from torch import nn

from implementations.tanh_regression import pytorch
# the Trainer with the harness's batch order, predict, save and export are the MNIST MLP's
from implementations.mnist_mlp.lightning import (  # noqa: F401  # concepts-from: mnist_mlp/lightning.py
    count_params, export_onnx, predict, save, train)

VARIANTS = {
    "modules": "LightningModule around pytorch.TanhRegressor (nn.Linear attributes) + Trainer.fit",
    "sequential": "LightningModule around nn.Sequential(nn.Linear, nn.Tanh(), nn.Linear) + Trainer.fit",
}


# %% model
class Regressor(L.LightningModule):
    """Any network from features to one output, trained on the mean squared error."""

    def __init__(self, network, optimizer, lr, betas, eps):
        super().__init__()
        self.save_hyperparameters(ignore=["network"])  # optimizer settings: stored in every checkpoint
        self.network = network  # a submodule: self.parameters() includes its parameters  # concept: params

    def forward(self, x):
        return self.network(x)  # concept: forward

    # %% step
    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)  # the Trainer calls zero_grad, backward and step  # concept: loss

    def configure_optimizers(self):
        return pytorch.make_optimizer(self.parameters(), **self.hparams)  # SGD or Adam  # concept: optimizer


# concept-absent: seed: the network is pytorch.build_model's, which seeds torch's generator first
def build_model(spec):
    return Regressor(pytorch.build_model(spec), **pytorch.optimizer_settings(spec))


# %% save
def load(spec, path):
    return Regressor.load_from_checkpoint(path + ".ckpt", network=pytorch.build_model(spec), weights_only=True)  # concept: save-load
