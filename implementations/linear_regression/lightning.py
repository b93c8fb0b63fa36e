"""Linear regression Y = XA + b in Lightning: nn.Linear in a LightningModule, SGD, Trainer.fit."""
import lightning as L
import torch
from torch import nn

# the Trainer with the harness's batch order, predict, save and export are the MNIST MLP's
from implementations.mnist_mlp.lightning import (  # noqa: F401  # concepts-from: mnist_mlp/lightning.py
    EpochBatches, count_params, export_onnx, predict, save)
from implementations.mnist_mlp.lightning import train as fit

VARIANTS = {
    "trainer": "LightningModule (nn.Linear, MSE, SGD) + Trainer.fit",
    "accumulate": "the same module, fed single rows, Trainer(accumulate_grad_batches=k): one optimizer step per k "
                  "rows, the mini-batch's (gradient accumulation; mini-batch mode only)",
}


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


# %% train
class EpochRows(EpochBatches):
    """The harness's order one row at a time: k consecutive rows are one of its mini-batches."""

    def __iter__(self):
        return iter(self.data.epoch_order(self.epoch)[:, None].tolist())

    def __len__(self):
        return self.data.steps_per_epoch * self.data.batch_size


def train(model, spec, data, rec):
    if spec.variant != "accumulate":
        return fit(model, spec, data, rec)
    # the Trainer divides each row's loss by k, lets backward add the k gradients, and steps every k batches
    return fit(model, spec, data, rec, sampler=EpochRows(data), accumulate_grad_batches=spec.batch_size)  # concept: step


# %% save
def load(spec, path):
    return LinearRegression.load_from_checkpoint(path + ".ckpt", weights_only=True)  # concept: save-load
