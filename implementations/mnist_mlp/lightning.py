"""MNIST MLP in Lightning: the PyTorch MLP inside a LightningModule; Trainer.fit owns the loop."""
import os

import lightning as L
import torch
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger

from implementations.mnist_mlp import pytorch
# a LightningModule is an nn.Module: torch.export takes it as it is, like the PyTorch column's model
from implementations.mnist_mlp.pytorch import export_deploy, load_deploy  # noqa: F401  # concept: deploy

VARIANTS = {
    "trainer": "LightningModule (training_step, configure_optimizers) + Trainer.fit",
    "tensorboard": "the same, logging with self.log to a TensorBoardLogger; the test set as validation data",
    "mlflow": "the same self.log calls, written by an MLFlowLogger into an MLflow run (a SQLite store)",
    "tuned": "manual optimization with Adam(fused=True), Trainer(barebones=True), malloc keeping freed buffers",
}


# %% model
class Classifier(L.LightningModule):
    """Any network from images to logits, trained with Adam on softmax cross-entropy."""

    def __init__(self, network, lr, betas, eps):
        super().__init__()
        self.save_hyperparameters(ignore=["network"])  # lr, betas, eps: stored in every checkpoint
        self.network = network  # concept: params

    def forward(self, x):
        return self.network(x)  # concept: forward

    # %% step
    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x).float()  # the loss in float32 whatever the Trainer's precision
        return pytorch.loss_fn(logits, y)  # the Trainer calls zero_grad, backward and step around it  # concept: loss

    def configure_optimizers(self):
        hp = self.hparams
        return torch.optim.Adam(self.parameters(), lr=hp.lr, betas=hp.betas, eps=hp.eps)  # concept: optimizer


# %% model
def adam_settings(spec):
    eps = 1e-8 if spec.adam_eps is None else spec.adam_eps  # torch's default: eps outside the sqrt
    return dict(lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=eps)


class LoggingClassifier(Classifier):
    """The logging variants: the same module, logging as Lightning users do. `self.log` hands a value
    to the Trainer's logger: each step's in training, the epoch's mean (weighted by batch size) in validation."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("loss/train", loss)  # inside the timed step
        return loss

    def validation_step(self, batch, batch_idx):  # Trainer.fit runs it after each epoch's training
        x, y = batch
        self.log("accuracy/test", (self(x).argmax(dim=1) == y).float().mean())


# concept-absent: seed: the network is pytorch.build_model's, which seeds torch's generator first
def build_model(spec):
    if spec.variant == "tuned":
        return tuned_module(pytorch.build_model(spec), spec)  # below, in its own cell
    module = LoggingClassifier if spec.variant in ("tensorboard", "mlflow") else Classifier
    return module(pytorch.build_model(spec), **adam_settings(spec))  # the PyTorch column's MLP


count_params = pytorch.count_params


# %% precision
# Lightning's own names for them: the Trainer runs training_step under torch.autocast ("bf16-mixed"), or
# casts each batch to bfloat16 ("bf16-true"; the network comes bfloat16 from pytorch.build_model already)
TRAINER_PRECISION = {"fp32": "32-true", "mixed": "bf16-mixed", "bf16": "bf16-true"}  # concept: precision


def precision_used(model, spec, x):
    """The weights' dtype, and that of the logits of the forward under the Trainer's own precision plugin."""
    plugin = model.trainer.precision_plugin  # the one Trainer.fit ran every training_step under
    with torch.no_grad(), plugin.train_step_context():
        logits = model(plugin.convert_input(torch.from_numpy(x).to(model.device)))
    return {"params": next(model.parameters()).dtype, "compute": logits.dtype}


# %% train
class EpochBatches(torch.utils.data.Sampler):
    """The harness's batch order: each item is one batch's row indices. Trainer.fit calls set_epoch
    before every epoch (as for a DistributedSampler), so each epoch gets its own permutation."""

    def __init__(self, data):
        self.data, self.epoch = data, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        return iter(self.data.epoch_batches(self.epoch).tolist())

    def __len__(self):
        return self.data.steps_per_epoch


def logger(spec):
    """The logging variants' Lightning logger, writing into the cell's own folder; False: none."""
    cell_dir = os.environ.get("DLROSETTA_CELL_DIR", ".")
    if spec.variant == "tensorboard":  # event files in <save_dir>/<name>/version_0/
        return TensorBoardLogger(cell_dir, name="tensorboard")
    if spec.variant == "mlflow":  # one run in an MLflow tracking store (MLflow 3 deprecates a plain ./mlruns folder)
        return MLFlowLogger("mnist_mlp", tracking_uri=f"sqlite:///{cell_dir}/mlflow.db")
    return False


# concept-absent: jit: Trainer.fit runs the module eagerly (torch.compile(model) before fit would compile)
def train(model, spec, data, rec, sampler=None, **trainer_options):
    """`sampler` and `trainer_options`: linear regression's gradient accumulation feeds single rows."""
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(data.x_train), torch.from_numpy(data.y_train))
    # batch_size=None: the sampler yields whole batches, and the dataset slices all their rows at once
    loader = torch.utils.data.DataLoader(dataset, sampler=sampler or EpochBatches(data), batch_size=None)  # concept: batching
    logging, validation = {"logger": logger(spec)}, None
    if logging["logger"]:  # the logging variants
        logging["log_every_n_steps"] = 1  # Lightning's default writes every 50th step
        test = torch.utils.data.TensorDataset(torch.from_numpy(data.x_test), torch.from_numpy(data.y_test))
        # validation runs inside fit, so these variants' epoch times include it (their step times do not)
        validation = torch.utils.data.DataLoader(test, batch_size=spec.batch_size)
    flags = dict(enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, **logging)
    if spec.variant == "tuned":
        flags = TUNED_TRAINER_FLAGS  # # %% tuned-model
    trainer = L.Trainer(max_epochs=spec.epochs, accelerator="gpu" if spec.device == "gpu" else "cpu",
                        devices=1, callbacks=[rec.lightning_callback()], **flags,
                        precision=TRAINER_PRECISION[getattr(spec, "precision", "fp32")],  # regressions: fp32
                        **trainer_options)  # concept: device
    trainer.fit(model, train_dataloaders=loader, val_dataloaders=validation)  # concept: zero-grad, gradient, step
    return model


# %% evaluate
predict = pytorch.predict  # a LightningModule is an nn.Module: eval(), no_grad, call it  # concept: mode


# %% save
def save(model, path):
    model.trainer.save_checkpoint(path + ".ckpt")  # weights, optimizer state, hyper-parameters  # concept: save-load


def load(spec, path):
    return Classifier.load_from_checkpoint(path + ".ckpt", network=pytorch.build_model(spec), weights_only=True)


# %% export
def export_onnx(model, path, example):
    batch = torch.export.Dim("batch")
    model.eval().to_onnx(path, (torch.from_numpy(example),), dynamo=True, input_names=["x"], output_names=["y"],
                  dynamic_shapes={"x": {0: batch}})  # concept: mode, export
    return {"exporter": "LightningModule.to_onnx (torch.onnx.export, dynamo)"}


# %% tuned-model
# tuned: the same network, batches and Trainer.fit, with three changes. Measured on 2 threads, batch 128,
# primary -> tuned ms per step: MLP 3.5 -> 2.6 (medians of 3 processes each), CNN 44 -> 25 (the README's MNIST
# bench); the PyTorch column's eager -> tuned in the same runs: 2.4 -> 2.2 and 35 -> 20.
# - The PyTorch column's own tuned changes (mnist_mlp/pytorch.py, # %% tuned-train): Adam(fused=True), one
#   kernel per parameter for the whole update; glibc's malloc keeping freed buffers (the CNN's 11 MB
#   activations stop being page-faulted in every step); and for the CNN the pool before the ReLU
#   (pytorch.build_model builds that network for a tuned spec).
# - Manual optimization: training_step calls zero_grad, manual_backward and step itself. Under automatic
#   optimization the Trainer wraps every step in a closure that optimizer.step calls back through the
#   precision plugin and the strategy.
# - Trainer(barebones=True): Lightning's mode for raw speed. self.log does nothing and the per-step logging
#   bookkeeping is skipped (so are checkpoints, the progress bar, the summary and the sanity check, which the
#   primary turns off one by one); callbacks, the harness's among them, still run.
TUNED_TRAINER_FLAGS = {"barebones": True}


class TunedClassifier(Classifier):
    def __init__(self, network, lr, betas, eps):
        super().__init__(network, lr, betas, eps)
        self.automatic_optimization = False  # training_step steps the optimizer itself

    def training_step(self, batch, batch_idx):
        optimizer = self.optimizers()
        optimizer.zero_grad()
        loss = super().training_step(batch, batch_idx)
        self.manual_backward(loss)  # loss.backward(), through the precision plugin
        optimizer.step()
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), **self.hparams, fused=True)


def tuned_module(network, spec):
    pytorch.keep_freed_memory()
    return TunedClassifier(network, **adam_settings(spec))
