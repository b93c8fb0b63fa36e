"""MNIST MLP in TF1 (tf.compat.v1): the whole graph first (placeholders, variables, loss, Adam's update
op), then a Session that runs the update op on every batch fed through feed_dict."""
import os
import types

if os.environ.get("DLROSETTA_VARIANT") == "legacy_layers":
    # tf.compat.v1.layers needs Keras 2 (the tf-keras package): TF reads this switch once, when it is
    # imported, and it then holds for the whole process (every cell is its own process)
    os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from harness.matrix.init import shared_params  # noqa: E402

# TF1 semantics: ops build a graph instead of running at once. This switch is global to the process
# (it cannot be undone); every dlrosetta cell is its own process, so nothing else is affected.
tf.compat.v1.disable_eager_execution()  # concept: jit

VARIANTS = {
    "raw": "raw tf.compat.v1 variables and tf.nn ops, AdamOptimizer, numpy batches through feed_dict",
    "legacy_layers": "tf.compat.v1.layers.dense from tf-keras (TF_USE_LEGACY_KERAS=1, set before import)",
}


# %% model
def initializers(params):
    """get_variable's default initializer is glorot_uniform for every variable, biases included, so
    biases get zeros explicitly (as tf.compat.v1.layers does); `params`: the spec's shared weights."""
    if params is None:
        return dict(kernel_initializer=tf.compat.v1.glorot_uniform_initializer(),
                    bias_initializer=tf.compat.v1.zeros_initializer())
    return dict(kernel_initializer=tf.constant_initializer(params["kernel"]),
                bias_initializer=tf.constant_initializer(params["bias"]))


def weights(name, shape, params, spec):
    """A kernel of `shape` and a bias of its last dimension, as raw variables under `name/`, read in the
    compute dtype (see # %% precision)."""
    init, (dtype, compute) = initializers(params), dtypes(spec)
    with tf.compat.v1.variable_scope(name, dtype=dtype):  # the variables' dtype: float32, or bfloat16 for bf16
        kernel = tf.compat.v1.get_variable("kernel", shape, initializer=init["kernel_initializer"])  # concept: params
        bias = tf.compat.v1.get_variable("bias", shape[-1:], initializer=init["bias_initializer"])
    # mixed: the forward reads bfloat16 casts of float32 variables; their gradients come back float32
    return tf.cast(kernel, compute), tf.cast(bias, compute)  # concept: precision


def dense(x, units, name, params, spec, activation=None):
    if spec.variant == "legacy_layers":
        return tf.compat.v1.layers.dense(x, units, activation, name=name, **initializers(params))
    kernel, bias = weights(name, [x.shape[-1], units], params, spec)
    y = tf.matmul(x, kernel) + bias  # concept: forward
    return y if activation is None else activation(y)


def mlp(x, spec):
    shared = shared_params(spec) if spec.init == "shared" else [None] * (len(spec.hidden) + 1)
    for i, units in enumerate(spec.hidden):
        x = dense(x, units, f"dense_{i}", shared[i], spec, tf.nn.relu)
    return dense(x, spec.num_classes, "logits_layer", shared[-1], spec)  # logits: no activation


def build_graph(spec, forward, input_shape):
    """Inputs, model, loss and update op, all in one graph; then a Session that initialises it."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(spec.seed)  # the graph-level seed of every initializer  # concept: seed
        x = tf.compat.v1.placeholder(tf.float32, [None, *input_shape], name="x")  # None: any batch size
        labels = tf.compat.v1.placeholder(tf.int64, [None], name="labels")
        # the forward in the compute dtype; loss and predictions read its logits in float32
        logits_compute = tf.identity(forward(tf.cast(x, dtypes(spec)[1]), spec), name="logits_compute")
        logits = tf.identity(tf.cast(logits_compute, tf.float32), name="logits")  # concept: precision
        loss = tf.identity(loss_fn(logits, labels, spec.num_classes), name="loss")
        update_op(loss, spec)
        init, saver = tf.compat.v1.global_variables_initializer(), tf.compat.v1.train.Saver()
    # concept-absent: device: TensorFlow places each op on the GPU when one is visible, no call needed
    sess = tf.compat.v1.Session(graph=graph)
    sess.run(init)  # variables hold no value until their initializer runs
    return model_of(sess, saver)


def model_of(sess, saver):
    """The model is the Session plus the graph's named tensors: what train and predict feed and fetch."""
    get = sess.graph.get_tensor_by_name
    return types.SimpleNamespace(sess=sess, saver=saver, x=get("x:0"), labels=get("labels:0"),
                                 logits=get("logits:0"), logits_compute=get("logits_compute:0"), loss=get("loss:0"),
                                 train_op=sess.graph.get_operation_by_name("train"))


def build_model(spec):
    return build_graph(spec, mlp, (spec.input_size,))


def count_params(model):
    return sum(int(np.prod(v.shape)) for v in model.sess.graph.get_collection("trainable_variables"))


# %% precision
def dtypes(spec):
    """(variables, compute) dtypes: mixed keeps float32 variables (and Adam's slots) and casts them to
    bfloat16 in the graph, where the matmuls read them; bf16 creates the variables in bfloat16."""
    precision = getattr(spec, "precision", "fp32")  # tanh_regression/tf1.py reuses dense(): its spec has none
    return {"fp32": (tf.float32, tf.float32), "mixed": (tf.float32, tf.bfloat16),
            "bf16": (tf.bfloat16, tf.bfloat16)}[precision]


def precision_used(model, spec, x):
    variable = model.sess.graph.get_collection("trainable_variables")[0]
    logits = model.sess.run(model.logits_compute, feed_dict={model.x: x})  # the forward's, before the float32 cast
    return {"params": variable.dtype.base_dtype, "compute": logits.dtype}


# %% loss
def loss_fn(logits, labels, num_classes):
    # TF1 tutorials fed one-hot labels; sparse_softmax_cross_entropy_with_logits takes class ids as well
    one_hot = tf.one_hot(labels, num_classes)
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=one_hot, logits=logits))  # concept: loss


# %% step
def update_op(loss, spec):
    # epsilon 1e-8 is the paper's "epsilon hat": m / (sqrt(v) + eps) with the bias correction in the step size
    eps = 1e-8 if spec.adam_eps is None else spec.adam_eps
    beta2 = spec.beta2
    if spec.precision == "bf16":  # the Adam op takes beta2 in the variables' dtype, and bfloat16 rounds 0.999 to 1:
        beta2 = min(beta2, 1 - 2**-8)  # v would stay 0 and m / eps blow up; 1 - 2**-8: the largest bfloat16 below 1
    optimizer = tf.compat.v1.train.AdamOptimizer(spec.lr, beta1=spec.beta1, beta2=beta2,
                                                 epsilon=eps)  # concept: optimizer
    # concept-absent: zero-grad: each run of the update op computes the gradients anew: nothing accumulates
    return optimizer.minimize(loss, name="train")  # one op: gradients + Adam update  # concept: gradient, step


def train_step(model, x, y):
    # one run computes the loss and applies the update; the fetched loss is the one before the update
    _, loss = model.sess.run([model.train_op, model.loss], feed_dict={model.x: x, model.labels: y})
    return loss


# %% train
# concept-absent: mode: a graph has no mode switch: a layer that differs would read a placeholder
def train(model, spec, data, rec):
    for epoch in range(spec.epochs):
        for x, y in data.batches(epoch):  # concept: batching
            rec.step(train_step(model, x, y))
        rec.epoch(model)
    return model


# %% evaluate
def predict(model, x):
    return model.sess.run(model.logits, feed_dict={model.x: x})


# %% save
def save(model, path):
    model.saver.save(model.sess, path + ".ckpt")  # variables: .data/.index, graph: .meta  # concept: save-load


def load(spec, path):
    graph = tf.Graph()  # a fresh graph: import the saved one, then restore the variables' values
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(path + ".ckpt.meta")  # concept: save-load
    sess = tf.compat.v1.Session(graph=graph)
    saver.restore(sess, path + ".ckpt")  # concept: save-load
    return model_of(sess, saver)


# %% export
def export_onnx(model, path, example):
    import tf2onnx

    # tf2onnx reads a graph without variables: freeze their current values into constants first
    frozen = tf.compat.v1.graph_util.convert_variables_to_constants(  # concept: export
        model.sess, model.sess.graph.as_graph_def(), ["logits"])
    tf2onnx.convert.from_graph_def(frozen, input_names=["x:0"], output_names=["logits:0"], output_path=path)
    return {"exporter": "tf2onnx.convert.from_graph_def (frozen Session graph)"}


# %% deploy
def export_deploy(model, path, example):
    # a SavedModel: the graph, the variables' values and a signature that names the input and output
    # tensors, so TF Serving (or any TF program) feeds and fetches them without this file
    with model.sess.graph.as_default():
        tf.compat.v1.saved_model.simple_save(model.sess, path, inputs={"x": model.x},  # concept: deploy
                                             outputs={"logits": model.logits})
    return {"exporter": "tf.compat.v1.saved_model.simple_save (SavedModel)", "file": path}


def load_deploy(file):
    sess = tf.compat.v1.Session(graph=tf.Graph())  # a fresh graph: the SavedModel brings its own
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], file)  # concept: deploy
    signature = meta.signature_def["serving_default"]  # tensor names by the signature's keys
    x, logits = signature.inputs["x"].name, signature.outputs["logits"].name
    return lambda batch: sess.run(logits, feed_dict={x: batch})
