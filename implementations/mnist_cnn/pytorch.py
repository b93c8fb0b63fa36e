"""MNIST CNN in PyTorch: nn.Conv2d and nn.MaxPool2d in an nn.Module, trained exactly like the MLP."""
import torch
from torch import nn

from harness.matrix.init import dense_rows_nhwc_to_nchw, shared_params
# trained exactly like the MLP: the loss, step, loop, predict, save and export come from its file
from implementations.mnist_mlp.pytorch import (  # noqa: F401  # concepts-from: mnist_mlp/pytorch.py
    PARAM_DTYPES, copy_weights, count_params, device_of, export_deploy, export_onnx, load_deploy, precision_used,
    predict, save, train)

VARIANTS = {
    "eager": "in-memory tensors sliced per batch, eager mode",
    "dataloader": "TensorDataset + DataLoader with the harness's batch order (a batch sampler)",
    "compile": "torch.compile(model): first step includes the Inductor compile",
    "tuned": "max-pool before ReLU (the same function); the MLP's tuned loop: fused Adam, malloc keeping freed buffers",
}


# %% model
class CNN(nn.Module):
    def __init__(self, spec):
        super().__init__()
        channels = spec.input_shape[2]
        layers = []
        for filters in spec.conv_filters:  # conv 3x3 "valid" (no padding), ReLU, max-pool 2
            layers += [nn.Conv2d(channels, filters, spec.kernel_size), nn.ReLU(), nn.MaxPool2d(spec.pool_size)]
            channels = filters
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(spec.flat_size, spec.num_classes)  # logits  # concept: params

    def forward(self, x):
        # The harness hands out NHWC images; torch's layers index NCHW. permute relabels the axes
        # without copying: the result is an NCHW tensor stored channels-last, the layout that
        # build_model gives the weights too (see there).
        x = x.permute(0, 3, 1, 2)  # concept: forward
        return self.classifier(torch.flatten(self.features(x), 1))  # flatten keeps the batch axis


def build_model(spec):
    torch.manual_seed(spec.seed)  # the global generator the layers draw their weights from  # concept: seed
    model = TunedCNN(spec) if spec.variant == "tuned" else CNN(spec)  # TunedCNN: below, in its own cell
    if spec.init == "shared":  # the spec's weights in torch's layouts
        *convs, dense = shared_params(spec)
        weights = [(p["kernel"].transpose(3, 2, 0, 1), p["bias"]) for p in convs]  # HWIO -> OIHW
        # the spec's dense kernel reads features flattened (h, w, c); torch flattens (c, h, w)
        weights.append((dense_rows_nhwc_to_nchw(dense["kernel"], spec).T, dense["bias"]))
        copy_weights(model, weights)
    # channels_last: NHWC storage behind NCHW indexing. oneDNN's CPU kernels are written for it;
    # with the default NCHW storage max-pool alone took 4.5 ms of a 40 ms step here, 0.6 ms after
    # (PyTorch's "Channels Last Memory Format" tutorial). The numbers and the state_dict are unchanged.
    return model.to(device_of(spec), PARAM_DTYPES[spec.precision], memory_format=torch.channels_last)  # concept: device


# %% save
def load(spec, path):
    model = build_model(spec)
    model.load_state_dict(torch.load(path + ".pt", weights_only=True))
    return model


# %% tuned-model
# The same network, made fast: ReLU is monotone, so relu(max_pool(x)) == max_pool(relu(x)), gradients
# included (the window's maximum is the element that gets the gradient either way). Pooling first, the
# ReLU and its backward touch a quarter of the values: step 11.9 -> 9.6 ms (with the tuned loop's
# malloc setting; the conv layers keep their indices, so the state_dict is the primary's).
class TunedCNN(CNN):
    def __init__(self, spec):
        super().__init__(spec)
        layers = list(self.features)
        for i in range(0, len(layers), 3):  # conv, relu, pool -> conv, pool, relu
            layers[i + 1], layers[i + 2] = layers[i + 2], layers[i + 1]
        self.features = nn.Sequential(*layers)
