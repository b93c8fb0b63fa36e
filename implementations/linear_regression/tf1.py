"""Linear regression Y = XA + b in TF1 (tf.compat.v1): placeholders and variables in a graph, an update op
from GradientDescentOptimizer, and a Session that runs it on each batch fed through feed_dict."""
import types

import numpy as np
import tensorflow as tf

# TF1 semantics: ops build a graph instead of running at once. This switch is global to the process
# (it cannot be undone); every dlrosetta cell is its own process, so nothing else is affected.
tf.compat.v1.disable_eager_execution()  # concept: jit

VARIANTS = {"feed_dict": "placeholders fed with numpy batches, GradientDescentOptimizer.minimize, Session.run"}


# %% model
def build_model(spec):
    """The whole graph first: inputs, parameters, loss and update op. Then a Session to run it."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, spec.d], name="x")  # None: any batch size
        y = tf.compat.v1.placeholder(tf.float32, [None, 1], name="y")
        A = tf.Variable(tf.zeros([spec.d, 1]), name="A")  # zeros, as in every column  # concept: params
        b = tf.Variable(tf.zeros([1]), name="b")
        prediction = tf.add(tf.matmul(x, A), b, name="prediction")  # concept: forward
        loss = loss_fn(prediction, y)
        train_op = update_op(loss, spec.lr)
        init, saver = tf.compat.v1.global_variables_initializer(), tf.compat.v1.train.Saver()
    # concept-absent: device: TensorFlow places each op on the GPU when one is visible, no call needed
    sess = tf.compat.v1.Session(graph=graph)
    sess.run(init)  # variables hold no value until their initializer runs
    return types.SimpleNamespace(sess=sess, x=x, y=y, prediction=prediction, loss=loss, train_op=train_op,
                                 saver=saver)


def count_params(model):
    return sum(int(np.prod(v.shape)) for v in model.sess.graph.get_collection("trainable_variables"))


# %% loss
def loss_fn(prediction, y):
    return tf.reduce_mean(tf.square(prediction - y))  # concept: loss


# %% step
def update_op(loss, lr):
    """An op of the graph: each run of it computes the gradients and applies A -= lr * dA, b -= lr * db."""
    # concept-absent: zero-grad: each run of the update op computes the gradients anew: nothing accumulates
    return tf.compat.v1.train.GradientDescentOptimizer(lr).minimize(loss)  # concept: optimizer, gradient, step


# %% train
# concept-absent: mode: a graph has no mode switch: a layer that differs would read a placeholder
def train(model, spec, data, rec):
    for epoch in range(spec.epochs):
        for x, y in data.batches(epoch):  # concept: batching
            # one run computes the loss and applies the update; the loss fetched is the one before it
            _, loss = model.sess.run([model.train_op, model.loss], feed_dict={model.x: x, model.y: y})
            rec.step(loss)
        rec.epoch(model)
    return model


# %% evaluate
def predict(model, x):
    return model.sess.run(model.prediction, feed_dict={model.x: x})


# %% save
def save(model, path):
    model.saver.save(model.sess, path + ".ckpt")  # concept: save-load


def load(spec, path):
    model = build_model(spec)  # the same graph again, then the saved values into its variables
    model.saver.restore(model.sess, path + ".ckpt")  # concept: save-load
    return model


# %% export
def export_onnx(model, path, example):
    import tf2onnx

    # tf2onnx reads a graph without variables: freeze their current values into constants first
    frozen = tf.compat.v1.graph_util.convert_variables_to_constants(  # concept: export
        model.sess, model.sess.graph.as_graph_def(), ["prediction"])
    tf2onnx.convert.from_graph_def(frozen, input_names=["x:0"], output_names=["prediction:0"], output_path=path)
    return {"exporter": "tf2onnx.convert.from_graph_def (frozen Session graph)"}
