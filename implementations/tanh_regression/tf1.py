"""Tanh regression d -> H (tanh) -> 1 in TF1 (tf.compat.v1): the graph first (placeholders, variables,
MSE, an SGD or Adam update op), then a Session that runs the update op on each batch fed through feed_dict."""
import functools
import types

import tensorflow as tf

from harness.matrix.init import shared_params
# the Session loop, predict, save and export are linear regression's (same placeholders x, y and
# "prediction" output); the raw dense layer is the MNIST MLP's
from implementations.linear_regression.tf1 import (  # noqa: F401  # concepts-from: linear_regression/tf1.py
    count_params, export_onnx, loss_fn, predict, save, train)
from implementations.mnist_mlp.tf1 import dense

VARIANTS = {
    "modules": "two raw dense layers (tf.compat.v1.get_variable kernels and biases under variable scopes), named",
    "sequential": "the same layers as a list of functions, composed in order (TF1 has no container of its own)",
}


# %% model
def tanh_net(x, spec):
    shared = shared_params(spec) if spec.init == "shared" else [None, None]
    if spec.variant == "sequential":
        layers = [functools.partial(dense, units=spec.hidden, name="hidden", params=shared[0], spec=spec,
                                    activation=tf.tanh),
                  functools.partial(dense, units=1, name="out", params=shared[1], spec=spec)]
        return functools.reduce(lambda h, layer: layer(h), layers, x)  # concept: forward
    # every get_variable lands in the graph's "trainable_variables" collection: that is how TF1 collects them
    h = dense(x, spec.hidden, "hidden", shared[0], spec, activation=tf.tanh)  # concept: forward
    return dense(h, 1, "out", shared[1], spec)


def build_model(spec):
    """The whole graph first: inputs, parameters, loss and update op. Then a Session to run it."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(spec.seed)  # the graph-level seed of every initializer  # concept: seed
        x = tf.compat.v1.placeholder(tf.float32, [None, spec.d], name="x")  # None: any batch size
        y = tf.compat.v1.placeholder(tf.float32, [None, 1], name="y")
        prediction = tf.identity(tanh_net(x, spec), name="prediction")
        loss = loss_fn(prediction, y)
        train_op = update_op(loss, spec)
        init, saver = tf.compat.v1.global_variables_initializer(), tf.compat.v1.train.Saver()
    # concept-absent: device: TensorFlow places each op on the GPU when one is visible, no call needed
    sess = tf.compat.v1.Session(graph=graph)
    sess.run(init)  # variables hold no value until their initializer runs
    return types.SimpleNamespace(sess=sess, x=x, y=y, prediction=prediction, loss=loss, train_op=train_op,
                                 saver=saver)


# %% step
def update_op(loss, spec):
    if spec.optimizer == "adam":  # epsilon on sqrt(v), the bias correction in the step size ("epsilon hat")
        eps = 1e-8 if spec.adam_eps is None else spec.adam_eps
        optimizer = tf.compat.v1.train.AdamOptimizer(spec.lr, beta1=spec.beta1, beta2=spec.beta2, epsilon=eps)
    else:
        optimizer = tf.compat.v1.train.GradientDescentOptimizer(spec.lr)  # concept: optimizer
    # concept-absent: zero-grad: each run of the update op computes the gradients anew: nothing accumulates
    return optimizer.minimize(loss)  # gradients of every trainable variable + the update  # concept: gradient, step


# %% save
def load(spec, path):
    model = build_model(spec)  # the same graph again, then the saved values into its variables
    model.saver.restore(model.sess, path + ".ckpt")  # concept: save-load
    return model
