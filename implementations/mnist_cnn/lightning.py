"""MNIST CNN in Lightning: the PyTorch CNN inside the MLP's LightningModule, trained exactly like the MLP."""
from implementations.mnist_cnn import pytorch
# trained exactly like the MLP: the LightningModule, Trainer, predict, save and export come from its file
from implementations.mnist_mlp.lightning import (  # noqa: F401  # concepts-from: mnist_mlp/lightning.py
    Classifier, adam_settings, count_params, export_deploy, export_onnx, load_deploy, precision_used, predict, save,
    train, tuned_module)

VARIANTS = {
    "trainer": "LightningModule (training_step, configure_optimizers) + Trainer.fit",
    "tuned": "the MLP's tuned module and Trainer, around the PyTorch column's tuned CNN (max-pool before ReLU)",
}


# %% model
def build_model(spec):
    if spec.variant == "tuned":  # pytorch.build_model builds the tuned CNN for a tuned spec
        return tuned_module(pytorch.build_model(spec), spec)
    return Classifier(pytorch.build_model(spec), **adam_settings(spec))  # the PyTorch column's CNN


# %% save
def load(spec, path):
    return Classifier.load_from_checkpoint(path + ".ckpt", network=pytorch.build_model(spec), weights_only=True)
