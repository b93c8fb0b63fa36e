"""Tanh regression d -> H (tanh) -> 1 in TF2: tf.Module layers of tf.Variables, a GradientTape, a Keras
optimizer (SGD or Adam) for the update, and a train step traced once by tf.function."""
import tensorflow as tf

from harness.matrix.init import shared_params
# the dense layer, predict, save and export are the MNIST MLP's; the loss is linear regression's
from implementations.linear_regression.tf2 import loss_fn
from implementations.mnist_mlp.tf2 import (  # noqa: F401  # concepts-from: mnist_mlp/tf2.py
    Dense, count_params, export_onnx, predict, restore, save)

VARIANTS = {
    "modules": "class TanhRegressor(tf.Module): two Dense attributes, tf.tanh in __call__",
    "sequential": "class Sequential(tf.Module): a list of callables [Dense, tf.tanh, Dense], applied in order",
}


# %% model
# tf.Module finds its variables by walking its attributes (lists and dicts included): trainable_variables
# then holds both layers' kernels and biases, whichever way they are nested
class TanhRegressor(tf.Module):
    def __init__(self, d, hidden, shared):
        super().__init__()
        self.hidden = Dense(d, hidden, shared[0])  # concept: params
        self.out = Dense(hidden, 1, shared[1])

    def __call__(self, x):
        return self.out(tf.tanh(self.hidden(x)))  # concept: forward


class Sequential(tf.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = layers  # concept: params

    # concept-absent: mode: a tf.Module has no mode switch: a layer that differs would take a training argument
    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)  # concept: forward
        return x


def build_model(spec):
    tf.random.set_seed(spec.seed)  # concept: seed
    shared = shared_params(spec) if spec.init == "shared" else [None, None]
    if spec.variant == "sequential":
        return Sequential([Dense(spec.d, spec.hidden, shared[0]), tf.tanh, Dense(spec.hidden, 1, shared[1])])
    return TanhRegressor(spec.d, spec.hidden, shared)


# %% step
def make_optimizer(spec):
    if spec.optimizer == "adam":  # Keras's Adam: "epsilon hat", default 1e-7 (TF1, PyTorch: 1e-8)
        eps = 1e-7 if spec.adam_eps is None else spec.adam_eps
        return tf.keras.optimizers.Adam(spec.lr, beta_1=spec.beta1, beta_2=spec.beta2, epsilon=eps)
    return tf.keras.optimizers.SGD(spec.lr)  # concept: optimizer


@tf.function  # traced once: every batch has the same shape (the harness drops the last partial one)  # concept: jit
# concept-absent: zero-grad: a GradientTape is used once and returns new gradients: nothing accumulates
def train_step(model, optimizer, x, y):
    variables = model.trainable_variables  # both layers' kernels and biases, found through the attributes
    with tf.GradientTape() as tape:  # concept: gradient
        loss = loss_fn(model(x), y)
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))  # concept: gradient, step
    return loss


# %% train
# concept-absent: device: TensorFlow places each op on the GPU when one is visible, no call needed
def train(model, spec, data, rec):
    optimizer = make_optimizer(spec)
    x_all, y_all = tf.constant(data.x_train), tf.constant(data.y_train)  # in memory, once
    for epoch in range(spec.epochs):
        for idx in data.epoch_batches(epoch):  # concept: batching
            rec.step(train_step(model, optimizer, tf.gather(x_all, idx), tf.gather(y_all, idx)))
        rec.epoch(model)
    return model


# %% save
def load(spec, path):
    return restore(build_model(spec), path)  # a checkpoint holds values: build the model, then fill it
