"""Linear regression Y = XA + b in TF2: a tf.Module holding two tf.Variables, a GradientTape for the
gradients, assign_sub for the update, and tf.function to run the step as a graph."""
import numpy as np
import tensorflow as tf

VARIANTS = {"function": "GradientTape + assign_sub in a @tf.function step, traced once (fixed batch shape)"}


# %% model
class Linear(tf.Module):
    def __init__(self, d):
        super().__init__()
        self.A = tf.Variable(tf.zeros([d, 1]), name="A")  # zeros, as in every column  # concept: params
        self.b = tf.Variable(tf.zeros([1]), name="b")

    # concept-absent: mode: a tf.Module has no mode switch: a layer that differs would take a training argument
    def __call__(self, x):
        return x @ self.A + self.b  # concept: forward


def build_model(spec):
    return Linear(spec.d)


def count_params(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


# %% loss
def loss_fn(prediction, y):
    return tf.reduce_mean(tf.square(prediction - y))  # concept: loss


# %% step
@tf.function  # traced on the first call; every batch has the same shape, so only once  # concept: jit
# concept-absent: zero-grad: a GradientTape is used once and returns new gradients: nothing accumulates
# concept-absent: optimizer: plain SGD with assign_sub (mnist_mlp/tf2.py uses Keras's Adam)
def train_step(model, x, y, lr):
    with tf.GradientTape() as tape:  # concept: gradient
        loss = loss_fn(model(x), y)
    grad_a, grad_b = tape.gradient(loss, [model.A, model.b])  # concept: gradient
    model.A.assign_sub(lr * grad_a)  # in place, like the no_grad update in PyTorch  # concept: step
    model.b.assign_sub(lr * grad_b)
    return loss  # the loss before the update


# %% train
# concept-absent: device: TensorFlow places each op on the GPU when one is visible, no call needed
def train(model, spec, data, rec):
    x_all, y_all = tf.constant(data.x_train), tf.constant(data.y_train)  # in memory, once
    for epoch in range(spec.epochs):
        for idx in data.epoch_batches(epoch):  # concept: batching
            rec.step(train_step(model, tf.gather(x_all, idx), tf.gather(y_all, idx), spec.lr))
        rec.epoch(model)
    return model


# %% evaluate
def predict(model, x):
    return model(tf.constant(x)).numpy()


# %% save
def save(model, path):
    tf.train.Checkpoint(model=model).write(path + ".ckpt")  # variables, by attribute name  # concept: save-load


def load(spec, path):
    model = build_model(spec)
    tf.train.Checkpoint(model=model).read(path + ".ckpt").assert_consumed()  # concept: save-load
    return model


# %% export
def export_onnx(model, path, example):
    import tf2onnx

    signature = [tf.TensorSpec([None, example.shape[1]], tf.float32, name="x")]  # None: dynamic batch
    tf2onnx.convert.from_function(tf.function(model.__call__), input_signature=signature,
                                  output_path=path)  # concept: export
    return {"exporter": "tf2onnx.convert.from_function"}
