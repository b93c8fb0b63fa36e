"""MNIST CNN in Keras 3: the keras-io mnist_convnet model, on TensorFlow, JAX or PyTorch (KERAS_BACKEND)."""
import keras

# trained exactly like the MLP: compile, one fit over the harness's batches, same predict/save/export
# (on JAX the exported MaxPool has a 4-axis window that onnxruntime rejects: the cell reports it)
from implementations.mnist_mlp.keras import (POLICIES, count_params, export_deploy, export_onnx, load,  # noqa: F401
                                             load_deploy, loss_fn, precision_used, predict, save, train,
                                             with_shared_init)  # concepts-from: mnist_mlp/keras.py

VARIANTS = {
    "sequential": "keras.Sequential: a stack of layers, the keras-io mnist_convnet style",
    "functional": "functional API: keras.Input, layers called on tensors, keras.Model(inputs, outputs)",
    "tuned": "the layers laid out for the backend (channels_first on PyTorch, a reshape-and-max pool on JAX), "
             "compiled with steps_per_execution (the MLP's tuned)",
}


# %% model
def build_model(spec):
    keras.utils.set_random_seed(spec.seed)  # the initialisers draw from Keras's global seed  # concept: seed
    keras.config.set_dtype_policy(POLICIES[spec.precision])  # the layers' dtypes: see the MLP's precision cell
    conv = dict(kernel_size=spec.kernel_size, activation="relu")  # valid padding, channels last
    if spec.variant == "tuned":  # the backend's layout: # %% tuned-model
        return with_shared_init(tuned_model(spec, conv), spec)
    if spec.variant == "functional":
        inputs = keras.Input(shape=spec.input_shape)
        x = inputs
        for filters in spec.conv_filters:
            x = keras.layers.Conv2D(filters, **conv)(x)
            x = keras.layers.MaxPooling2D(spec.pool_size)(x)
        x = keras.layers.Flatten()(x)
        outputs = keras.layers.Dense(spec.num_classes)(x)  # logits: the loss applies the softmax
        model = keras.Model(inputs, outputs)  # concept: params
    else:
        model = keras.Sequential([keras.Input(shape=spec.input_shape)])  # concept: params
        for filters in spec.conv_filters:
            model.add(keras.layers.Conv2D(filters, **conv))
            model.add(keras.layers.MaxPooling2D(spec.pool_size))
        model.add(keras.layers.Flatten())
        model.add(keras.layers.Dense(spec.num_classes))  # logits: the loss applies the softmax
    return with_shared_init(model, spec)


# %% tuned-model
# tuned: the same layers and weights, laid out for the backend (trained as the MLP's # %% tuned-train). Measured
# on 2 threads, batch 128, primary -> tuned ms per step: PyTorch 27-34 -> 12.6, JAX 58-62 -> 34, TensorFlow 11.5 ->
# 9.2-10 (steps_per_execution alone).
# - PyTorch: Keras's layers are channels_last and on this backend transpose NHWC -> NCHW and back around every
#   Conv2D and MaxPooling2D (and again in the gradient). channels_first layers take the image transposed once
#   (Permute); Flatten(data_format="channels_first") flattens in (h, w, c) order like the primary, so the Dense
#   kernel, and with it `--init shared`, is the primary's.
# - JAX: MaxPooling2D is lax.reduce_window, whose gradient on XLA:CPU (select_and_scatter) costs ~48 ms; a pool
#   written as a reshape and a max over the window axes takes the same values and gradients for a fraction, and
#   exports to ONNX as ReduceMax, which onnxruntime runs (not the primary's 4-axis MaxPool). channels_first is
#   slower on XLA:CPU (65 ms).
# - TensorFlow: the primary's layers (oneDNN's pool is fast; the reshape-and-max pool is not faster there).
def tuned_model(spec, conv):
    backend = keras.backend.backend()
    layout = "channels_first" if backend == "torch" else "channels_last"
    model = keras.Sequential([keras.Input(shape=spec.input_shape)])
    if layout == "channels_first":
        model.add(keras.layers.Permute((3, 1, 2)))  # NHWC -> NCHW, once
    for filters in spec.conv_filters:
        model.add(keras.layers.Conv2D(filters, data_format=layout, **conv))
        model.add(ReshapeMaxPool(spec.pool_size) if backend == "jax"
                  else keras.layers.MaxPooling2D(spec.pool_size, data_format=layout))
    model.add(keras.layers.Flatten(data_format=layout))
    model.add(keras.layers.Dense(spec.num_classes))  # logits: the loss applies the softmax
    return model


@keras.saving.register_keras_serializable(package="dlrosetta")  # so that load_model finds the class
class ReshapeMaxPool(keras.layers.Layer):
    """MaxPooling2D(pool_size) on channels_last images: the rows and columns past the last whole window are
    dropped (valid padding), each window gets axes of its own, and the max is taken over them."""

    def __init__(self, pool_size, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = pool_size

    def call(self, x):
        p, (h, w, c) = self.pool_size, x.shape[1:]
        x = x[:, : h // p * p, : w // p * p, :]
        return keras.ops.max(keras.ops.reshape(x, (-1, h // p, p, w // p, p, c)), axis=(2, 4))

    def get_config(self):
        return super().get_config() | {"pool_size": self.pool_size}
