"""MNIST CNN in TF2: tf.nn.conv2d / max_pool2d in a tf.Module, trained exactly like the MLP (loss,
@tf.function step, loop, checkpoint, export: imported from the MLP file)."""
import tensorflow as tf

from harness.matrix.init import shared_params
from implementations.mnist_mlp.tf2 import (  # noqa: F401 - the harness calls them  # concepts-from: mnist_mlp/tf2.py
    Dense, count_params, dtypes, export_deploy, export_onnx, load_deploy, precision_used, predict, restore, save,
    train, variables)

VARIANTS = {
    "function": "in-memory tensors, batches gathered by index, @tf.function train step",
    "tf_data": "the same step fed by a tf.data.Dataset over the harness's batch indices",
    "tuned": "the step traced once as a concrete function for the batch's indices, gathering its own batch",
}  # not tuned_xla: XLA:CPU's max-pool gradient makes the step 3.3x slower (the MLP file's # %% tuned-step)


# %% model
class Conv2D(tf.Module):
    def __init__(self, size, in_channels, filters, params=None, dtype=tf.float32):
        super().__init__()
        self.kernel, self.bias = variables([size, size, in_channels, filters], params, dtype)  # HWIO  # concept: params

    def __call__(self, x):  # the weights in x's dtype, as the MLP's Dense
        kernel, bias = tf.cast(self.kernel, x.dtype), tf.cast(self.bias, x.dtype)
        return tf.nn.conv2d(x, kernel, strides=1, padding="VALID") + bias


class CNN(tf.Module):
    def __init__(self, spec, shared=None):
        super().__init__()
        shared = shared or [None] * (len(spec.conv_filters) + 1)
        channels = (spec.input_shape[-1], *spec.conv_filters)
        dtype, self.compute_dtype = dtypes(spec.precision)
        self.convs = [Conv2D(spec.kernel_size, i, o, p, dtype)
                      for i, o, p in zip(channels[:-1], channels[1:], shared)]
        self.dense = Dense(spec.flat_size, spec.num_classes, shared[-1], dtype)
        self.pool, self.flat_size = spec.pool_size, spec.flat_size

    def __call__(self, x):  # x: NHWC, the layout TF's conv2d expects
        x = tf.cast(x, self.compute_dtype)
        for conv in self.convs:
            x = tf.nn.max_pool2d(tf.nn.relu(conv(x)), self.pool, self.pool, padding="VALID")  # concept: forward
        return self.dense(tf.reshape(x, [-1, self.flat_size]))  # NHWC flatten: (h, w, c) order


def build_model(spec):
    tf.random.set_seed(spec.seed)  # concept: seed
    return CNN(spec, shared_params(spec) if spec.init == "shared" else None)


def load(spec, path):
    return restore(build_model(spec), path)  # the MLP's restore, into a CNN
