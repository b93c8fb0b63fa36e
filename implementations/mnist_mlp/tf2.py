"""MNIST MLP in TF2: a tf.Module of tf.Variables, a GradientTape for the gradients, Keras's Adam for
the update, and a @tf.function train step, traced into a graph on its first call."""
import os

import numpy as np
import tensorflow as tf

from harness.matrix.init import shared_params

VARIANTS = {
    "function": "in-memory tensors, batches gathered by index, @tf.function train step",
    "tf_data": "the same step fed by a tf.data.Dataset over the harness's batch indices",
    "tensorboard": "the in-memory loop, logging with tf.summary.create_file_writer + tf.summary.scalar",
    "tuned": "the step traced once as a concrete function for the batch's indices, gathering its own batch",
    "tuned_xla": "tuned, and the step compiled by XLA: @tf.function(jit_compile=True)",
}


# %% model
def variables(shape, params=None, dtype=tf.float32):
    """A kernel and a bias as tf.Variables of `dtype`: Glorot-uniform kernel and zero bias (Keras's defaults,
    drawn here with tf.random: this column uses no Keras layers), or the spec's shared weights."""
    if params is None:
        fan_in, fan_out = np.prod(shape[:-1]), np.prod(shape[:-2]) * shape[-1]
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        params = {"kernel": tf.random.uniform(shape, -limit, limit), "bias": tf.zeros(shape[-1:])}
    if dtype != tf.float32:  # bf16: the float32 draws (or shared weights), rounded once
        params = {name: tf.cast(value, dtype) for name, value in params.items()}
    return tf.Variable(params["kernel"], name="kernel"), tf.Variable(params["bias"], name="bias")


class Dense(tf.Module):
    def __init__(self, fan_in, fan_out, params=None, dtype=tf.float32):
        super().__init__()
        self.kernel, self.bias = variables([fan_in, fan_out], params, dtype)  # concept: params

    def __call__(self, x):  # the weights in x's dtype (see # %% precision); a no-op when they match
        return x @ tf.cast(self.kernel, x.dtype) + tf.cast(self.bias, x.dtype)


class MLP(tf.Module):
    def __init__(self, sizes, shared=None, precision="fp32"):
        super().__init__()
        shared = shared or [None] * (len(sizes) - 1)
        dtype, self.compute_dtype = dtypes(precision)
        self.layers = [Dense(i, o, p, dtype) for i, o, p in zip(sizes[:-1], sizes[1:], shared)]

    # concept-absent: mode: a tf.Module has no mode switch: a layer that differs would take a training argument
    def __call__(self, x):
        x = tf.cast(x, self.compute_dtype)  # and each layer casts its weights to x's dtype  # concept: precision
        for layer in self.layers[:-1]:
            x = tf.nn.relu(layer(x))  # concept: forward
        return self.layers[-1](x)  # logits: no activation


def build_model(spec):
    tf.random.set_seed(spec.seed)  # concept: seed
    shared = shared_params(spec) if spec.init == "shared" else None
    return MLP((spec.input_size, *spec.hidden, spec.num_classes), shared, spec.precision)


def count_params(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)  # every tf.Variable it holds


# %% precision
def dtypes(precision):
    """(variables, compute) dtypes. No Keras policy here: mixed keeps float32 variables (and Adam's slots) and
    the layers cast them to bfloat16 where the forward reads them; bf16 creates the variables in bfloat16."""
    return {"fp32": (tf.float32, tf.float32), "mixed": (tf.float32, tf.bfloat16),
            "bf16": (tf.bfloat16, tf.bfloat16)}[precision]


def precision_used(model, spec, x):
    # the training forward itself, on x: its logits before the loss's float32 cast
    return {"params": model.trainable_variables[0].dtype, "compute": model(tf.constant(x)).dtype}


# %% loss
def loss_fn(logits, labels):
    logits = tf.cast(logits, tf.float32)  # mixed, bf16: the softmax and the mean in float32  # concept: precision
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))  # concept: loss


# %% step
@tf.function  # traced once: every batch has the same shape (the harness drops the last partial one)  # concept: jit
# concept-absent: zero-grad: a GradientTape is used once and returns new gradients: nothing accumulates
def train_step(model, optimizer, x, y):
    with tf.GradientTape() as tape:  # concept: gradient
        loss = loss_fn(model(x), y)
    grads = tape.gradient(loss, model.trainable_variables)  # concept: gradient
    optimizer.apply_gradients(zip(grads, model.trainable_variables))  # concept: step
    return loss


# %% train
# concept-absent: device: TensorFlow places each op on the GPU when one is visible, no call needed
def train(model, spec, data, rec):
    # TF2's optimizers are Keras's: Adam's default epsilon is 1e-7 (TF1, PyTorch: 1e-8), as "epsilon hat"
    eps = 1e-7 if spec.adam_eps is None else spec.adam_eps
    beta2 = spec.beta2
    if spec.precision == "bf16":  # Keras's Adam casts beta_2 to the variables' dtype: bfloat16 rounds 0.999
        beta2 = min(beta2, 1 - 2**-8)  # to 1, and 1 - beta_2**t = 0 would freeze it: take bf16's largest below 1
    optimizer = tf.keras.optimizers.Adam(spec.lr, beta_1=spec.beta1, beta_2=beta2,
                                         epsilon=eps)  # concept: optimizer
    x_all, y_all = tf.constant(data.x_train), tf.constant(data.y_train)  # in memory, once
    if spec.variant.startswith("tuned"):  # a step that takes the batch's indices: # %% tuned-step, # %% tuned-train
        step = tuned_step(model, optimizer, x_all, y_all, data.batch_size, xla=spec.variant == "tuned_xla")
        return tuned_train(model, spec, data, rec, step)
    writer = None
    if spec.variant == "tensorboard":  # event files in the cell's own folder (tf.summary.scalar needs tensorboard)
        writer = tf.summary.create_file_writer(os.path.join(os.environ.get("DLROSETTA_CELL_DIR", "."), "tensorboard"))
    for epoch in range(spec.epochs):
        order = data.epoch_batches(epoch)
        if spec.variant == "tf_data":  # a pipeline that gathers the next batches while the step runs
            batches = tf.data.Dataset.from_tensor_slices(order).map(  # concept: batching
                lambda idx: (tf.gather(x_all, idx), tf.gather(y_all, idx))).prefetch(tf.data.AUTOTUNE)
        else:
            batches = ((tf.gather(x_all, idx), tf.gather(y_all, idx)) for idx in order)  # concept: batching
        for i, (x, y) in enumerate(batches):
            loss = train_step(model, optimizer, x, y)
            rec.step(loss)  # the harness reads the loss: the only sync
            if writer is not None:  # eager, outside the tf.function step, but inside the timed steps
                with writer.as_default():  # tf.summary.* write to the default writer
                    tf.summary.scalar("loss/train", loss, step=epoch * data.steps_per_epoch + i)
        if writer is not None:  # outside the step times (inside the epoch's); before rec.epoch, which may stop
            with writer.as_default():
                tf.summary.scalar("accuracy/test", accuracy(model, data.x_test, data.y_test), step=epoch)
            writer.flush()
        rec.epoch(model)
    return model


# %% evaluate
def predict(model, x):
    logits = model(tf.constant(x))  # eager: op by op, no tracing for each new batch size
    return tf.cast(logits, tf.float32).numpy()  # float32 logits whatever the precision


def accuracy(model, x, y):
    return float((predict(model, x).argmax(axis=1) == y).mean())


# %% save
def save(model, path):
    tf.train.Checkpoint(model=model).write(path + ".ckpt")  # variables, by attribute path  # concept: save-load


def restore(model, path):
    tf.train.Checkpoint(model=model).read(path + ".ckpt").assert_consumed()  # concept: save-load
    return model


def load(spec, path):
    return restore(build_model(spec), path)  # a checkpoint holds values: build the model, then fill it


# %% export
def export_onnx(model, path, example):
    import tf2onnx

    signature = [tf.TensorSpec([None, *example.shape[1:]], tf.float32, name="x")]  # None: dynamic batch
    tf2onnx.convert.from_function(tf.function(model.__call__), input_signature=signature,
                                  output_path=path)  # concept: export
    return {"exporter": "tf2onnx.convert.from_function"}


# %% deploy
def export_deploy(model, path, example):
    # a SavedModel: the tf.Module's variables plus the traced graph of one tf.function, with an input
    # signature (None: any batch size); loading it needs neither this class nor this file
    serve = tf.function(model.__call__, input_signature=[tf.TensorSpec([None, *example.shape[1:]], tf.float32)])
    tf.saved_model.save(model, path, signatures={"serving_default": serve})  # concept: deploy
    return {"exporter": "tf.saved_model.save (SavedModel)", "file": path}


def load_deploy(file):
    loaded = tf.saved_model.load(file)  # concept: deploy
    serve = loaded.signatures["serving_default"]  # keyword inputs in, a dict of outputs out

    def run(x):  # holds `loaded`: a signature does not keep the variables it reads alive
        return next(iter(serve(x=tf.constant(x)).values())).numpy()  # x: __call__'s argument name

    return run


# %% tuned-step
# tuned: the same train_step, traced once for a fixed signature (the batch's indices) and called as that
# concrete function, which skips matching the Python arguments (model, optimizer) against the traces on every
# call; and the batch's tf.gather inside the graph, not two eager ops before it. tuned_xla: compiled by XLA as
# well (jit_compile=True): forward, gradient and Adam's update fused into a few kernels instead of ~60 TF ops
# run one by one. Measured, MLP (2 threads, batch 128, 3 runs): primary 2.0 ms, tuned 1.7 ms (0.83x), tuned_xla
# 1.05 ms (0.51x; jit_compile alone: 1.5 ms). CNN: tuned 0.9-1.0x; tuned_xla 3.3x slower (51 ms against 15 ms:
# XLA:CPU's max-pool gradient, as in the JAX columns), so the CNN file lists tuned only.
def tuned_step(model, optimizer, x_all, y_all, batch_size, xla):
    @tf.function(jit_compile=xla)
    def step(idx):
        return train_step(model, optimizer, tf.gather(x_all, idx), tf.gather(y_all, idx))

    return step.get_concrete_function(tf.TensorSpec([batch_size], tf.int64))


# %% tuned-train
def tuned_train(model, spec, data, rec, step):  # the primary's loop, handing the step each batch's indices
    for epoch in range(spec.epochs):
        for idx in data.epoch_batches(epoch):
            rec.step(step(idx))  # the harness reads the loss: the only sync
        rec.epoch(model)
    return model
