"""MNIST CNN in TF1 (tf.compat.v1): raw conv and pooling ops in a graph, trained exactly like the MLP
(loss, Adam update op, Session loop, Saver, export: imported from the MLP file)."""
# first: the MLP module sets TF_USE_LEGACY_KERAS for the legacy_layers variant before TensorFlow loads
from implementations.mnist_mlp.tf1 import (  # noqa: F401 - the harness calls them  # concepts-from: mnist_mlp/tf1.py
    build_graph, count_params, dense, export_deploy, export_onnx, initializers, load, load_deploy, precision_used,
    predict, save, train, weights)

import tensorflow as tf  # noqa: E402

from harness.matrix.init import shared_params  # noqa: E402

VARIANTS = {
    "raw": "raw tf.compat.v1 variables, tf.nn.conv2d / max_pool2d, AdamOptimizer, feed_dict",
    "legacy_layers": "tf.compat.v1.layers.conv2d / dense from tf-keras (TF_USE_LEGACY_KERAS=1)",
}


# %% model
def conv_relu_pool(x, filters, name, params, spec):
    if spec.variant == "legacy_layers":
        x = tf.compat.v1.layers.conv2d(x, filters, spec.kernel_size, activation=tf.nn.relu, name=name,
                                       **initializers(params))
        return tf.compat.v1.layers.max_pooling2d(x, spec.pool_size, spec.pool_size)
    size = spec.kernel_size
    kernel, bias = weights(name, [size, size, x.shape[-1], filters], params, spec)  # HWIO kernel  # concept: params
    x = tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="VALID") + bias)  # concept: forward
    return tf.nn.max_pool2d(x, spec.pool_size, spec.pool_size, padding="VALID")


def cnn(x, spec):
    shared = shared_params(spec) if spec.init == "shared" else [None] * (len(spec.conv_filters) + 1)
    for i, filters in enumerate(spec.conv_filters):
        x = conv_relu_pool(x, filters, f"conv_{i}", shared[i], spec)
    x = tf.reshape(x, [-1, spec.flat_size])  # NHWC flatten: (h, w, c) order
    return dense(x, spec.num_classes, "logits_layer", shared[-1], spec)


def build_model(spec):
    return build_graph(spec, cnn, spec.input_shape)  # images NHWC, the layout TF's conv2d expects
