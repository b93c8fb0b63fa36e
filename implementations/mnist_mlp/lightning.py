"""MNIST MLP in Lightning: the PyTorch MLP inside a LightningModule; Trainer.fit owns the loop."""
import lightning as L
import torch

from implementations.mnist_mlp import pytorch

VARIANTS = {"trainer": "LightningModule (training_step, configure_optimizers) + Trainer.fit"}


# %% model
class Classifier(L.LightningModule):
    """Any network from images to logits, trained with Adam on softmax cross-entropy."""

    def __init__(self, network, lr, betas, eps):
        super().__init__()
        self.save_hyperparameters(ignore=["network"])  # lr, betas, eps: stored in every checkpoint
        self.network = network

    def forward(self, x):
        return self.network(x)

    # %% step
    def training_step(self, batch, batch_idx):
        x, y = batch
        return pytorch.loss_fn(self(x), y)  # the Trainer calls zero_grad, backward and step around it

    def configure_optimizers(self):
        hp = self.hparams
        return torch.optim.Adam(self.parameters(), lr=hp.lr, betas=hp.betas, eps=hp.eps)


# %% model
def adam_settings(spec):
    eps = 1e-8 if spec.adam_eps is None else spec.adam_eps  # torch's default: eps outside the sqrt
    return dict(lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=eps)


def build_model(spec):
    return Classifier(pytorch.build_model(spec), **adam_settings(spec))  # the PyTorch column's MLP


count_params = pytorch.count_params


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


def train(model, spec, data, rec):
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(data.x_train), torch.from_numpy(data.y_train))
    # batch_size=None: the sampler yields whole batches, and the dataset slices all their rows at once
    loader = torch.utils.data.DataLoader(dataset, sampler=EpochBatches(data), batch_size=None)
    trainer = L.Trainer(max_epochs=spec.epochs, accelerator="gpu" if spec.device == "gpu" else "cpu",
                        devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[rec.lightning_callback()])
    trainer.fit(model, train_dataloaders=loader)
    return model


# %% evaluate
predict = pytorch.predict  # a LightningModule is an nn.Module: eval(), no_grad, call it


# %% save
def save(model, path):
    model.trainer.save_checkpoint(path + ".ckpt")  # weights, optimizer state, hyper-parameters


def load(spec, path):
    return Classifier.load_from_checkpoint(path + ".ckpt", network=pytorch.build_model(spec), weights_only=True)


# %% export
def export_onnx(model, path, example):
    batch = torch.export.Dim("batch")
    model.eval().to_onnx(path, (torch.from_numpy(example),), dynamo=True, input_names=["x"], output_names=["y"],
                  dynamic_shapes={"x": {0: batch}})
    return {"exporter": "LightningModule.to_onnx (torch.onnx.export, dynamo)"}
