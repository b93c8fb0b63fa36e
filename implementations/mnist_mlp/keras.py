"""MNIST MLP in Keras 3: build the model, compile it, fit it. One file for three backends
(TensorFlow, JAX, PyTorch): Keras reads KERAS_BACKEND when it is imported."""
import os

import keras
import numpy as np

from harness.matrix.init import shared_params

VARIANTS = {
    "sequential": "keras.Sequential: a stack of layers, the keras-io mnist_convnet style",
    "functional": "functional API: keras.Input, layers called on tensors, keras.Model(inputs, outputs)",
    "tensorboard": "the Sequential model, fit with keras.callbacks.TensorBoard and the test set as validation data",
    "tuned": "the Sequential model, compiled with steps_per_execution (TF, JAX) and jit_compile=True (XLA on TF, "
             "torch.compile on PyTorch)",
}


# %% model
def build_model(spec):
    keras.utils.set_random_seed(spec.seed)  # the initialisers draw from Keras's global seed  # concept: seed
    keras.config.set_dtype_policy(POLICIES[spec.precision])  # for the layers built from here on  # concept: precision
    if spec.variant == "functional":
        inputs = keras.Input(shape=(spec.input_size,))
        x = inputs
        for units in spec.hidden:
            x = keras.layers.Dense(units, activation="relu")(x)
        outputs = keras.layers.Dense(spec.num_classes)(x)  # logits: the loss applies the softmax
        model = keras.Model(inputs, outputs)  # concept: params
    else:
        model = keras.Sequential([  # concept: params
            keras.Input(shape=(spec.input_size,)),
            *[keras.layers.Dense(units, activation="relu") for units in spec.hidden],
            keras.layers.Dense(spec.num_classes),  # logits: the loss applies the softmax
        ])
    return with_shared_init(model, spec)


def with_shared_init(model, spec):
    """`--init shared`: the spec's weights, whose layout (dense [in, out], conv HWIO) is Keras's own."""
    if spec.init == "shared":
        layers = [layer for layer in model.layers if layer.weights]
        for layer, params in zip(layers, shared_params(spec)):
            layer.set_weights([params["kernel"], params["bias"]])
    return model


def count_params(model):
    return model.count_params()


# %% precision
# A dtype policy: each layer keeps its variables in the policy's variable dtype and casts its inputs to its
# compute dtype. The loss casts the logits to float32 itself: a Loss computes in floatx under every policy.
POLICIES = {"fp32": "float32", "mixed": "mixed_bfloat16", "bf16": "bfloat16"}


def precision_used(model, spec, x):
    """The weights' dtype, and that of the logits of fit's forward pass (model(x, training=True)) on x."""
    return {"params": model.trainable_weights[0].dtype, "compute": model(x, training=True).dtype}


@keras.saving.register_keras_serializable(package="dlrosetta")  # so that load_model finds the class
class Bfloat16Adam(keras.optimizers.Adam):
    """Keras's Adam, with its step size computed in float32. Keras's own update casts beta_2 to the variable's
    dtype, and in bfloat16 0.999 rounds to 1.0: the step lr * sqrt(1 - beta_2**t) / (1 - beta_1**t) is 0 and
    bfloat16 weights never move. The moments and the update stay in the variable's dtype, as in Keras's."""

    def update_step(self, gradient, variable, learning_rate):
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        t = keras.ops.cast(self.iterations + 1, "float32")
        correction = keras.ops.sqrt(1 - keras.ops.power(self.beta_2, t)) / (1 - keras.ops.power(self.beta_1, t))
        alpha = keras.ops.cast(learning_rate * correction, variable.dtype)  # about 3e-4: bfloat16 holds it
        gradient = keras.ops.cast(gradient, variable.dtype)
        self.assign_add(m, (gradient - m) * (1 - self.beta_1))
        self.assign_add(v, (keras.ops.square(gradient) - v) * (1 - self.beta_2))
        self.assign_sub(variable, m * alpha / (keras.ops.sqrt(v) + self.epsilon))


# %% loss
# integer labels, mean over the batch
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # concept: loss


# %% train
def batches(data, epochs):
    """The harness's batches, epoch after epoch, as one stream of (x, y) numpy pairs."""
    for epoch in range(epochs):
        yield from data.batches(epoch)  # concept: batching


# concept-absent: zero-grad: fit takes fresh gradients every step (on PyTorch it calls zero_grad itself)
# concept-absent: device: Keras runs on its backend's default device, the GPU when one is visible
def train(model, spec, data, rec):
    # Keras's Adam adds epsilon to sqrt(v) and folds the bias corrections into the step size (the
    # paper's "epsilon hat", as TF1; torch and optax add it to sqrt(v_hat)), and its default is 1e-7
    # where torch and optax use 1e-8: the spec passes one only when all must agree (`--init shared`).
    epsilon = {} if spec.adam_eps is None else {"epsilon": spec.adam_eps}
    adam = Bfloat16Adam if spec.precision == "bf16" else keras.optimizers.Adam  # bf16: see the precision cell
    optimizer = adam(spec.lr, beta_1=spec.beta1, beta_2=spec.beta2, **epsilon)  # concept: optimizer
    if spec.variant == "tuned":  # compile's performance settings: # %% tuned-train
        return tuned_train(model, spec, data, rec, optimizer)
    # compile picks how the step runs: XLA-jitted on JAX, a tf.function graph on TensorFlow
    # (jit_compile="auto" leaves XLA off on a machine without a GPU), eager on PyTorch
    logged = spec.variant == "tensorboard"  # an accuracy metric to log, computed in every (timed) step
    model.compile(optimizer=optimizer, loss=loss_fn, metrics=["accuracy"] if logged else None)  # concept: jit
    # fit(x_train, y_train) would shuffle with Keras's own generator; every framework here follows
    # the harness's batch order, so fit reads it from a generator, steps_per_epoch batches per
    # epoch. The callback's loss is Keras's running mean over the epoch so far.
    callbacks = [rec.keras_callback()]
    if logged:  # fit's logs as event files in the cell's folder: <log_dir>/train and <log_dir>/validation
        log_dir = os.path.join(os.environ.get("DLROSETTA_CELL_DIR", "."), "tensorboard")
        callbacks.append(keras.callbacks.TensorBoard(log_dir, update_freq="batch"))  # default: once an epoch
    # with validation_data, fit evaluates the test set after each epoch (inside its epoch time): val_* logs
    model.fit(batches(data, spec.epochs), steps_per_epoch=data.steps_per_epoch, epochs=spec.epochs,
              shuffle=False, callbacks=callbacks, validation_data=(data.x_test, data.y_test) if logged else None,
              verbose=0)  # concept: gradient, step
    return model


# %% evaluate
# concept-absent: mode: fit calls the layers with training=True, predict_on_batch with training=False
def predict(model, x):
    # one compiled forward pass, a numpy array on every backend; model.predict builds a data
    # pipeline and callbacks on every call, which costs far more than the pass itself for small batches
    return np.asarray(model.predict_on_batch(x), dtype=np.float32)  # float32 for every policy  # concept: forward


# %% save
def save(model, path):
    model.save(path + ".keras")  # architecture, weights and optimizer state in one zip  # concept: save-load


def load(spec, path):
    return keras.saving.load_model(path + ".keras")  # concept: save-load


# %% export
def export_onnx(model, path, example):
    # Keras converts with the backend's own route: tf2onnx on TensorFlow, jax2onnx on JAX, the
    # TorchScript exporter on PyTorch. The input signature comes from keras.Input: batch axis None.
    model.export(path, format="onnx", verbose=False)  # concept: export
    return {"exporter": f"keras model.export(format='onnx'), {keras.backend.backend()} backend"}


# %% deploy
def export_deploy(model, path, example):
    # each backend's own serving format: a SavedModel from Keras itself on TensorFlow, and on JAX and
    # PyTorch the backend's exporter, which takes the model as that backend sees it
    backend = keras.backend.backend()
    if backend == "tensorflow":
        model.export(path, format="tf_saved_model", verbose=False)  # the `serve` endpoint  # concept: deploy
        return {"exporter": "keras model.export(format='tf_saved_model')", "file": path}
    if backend == "jax":
        from implementations.mnist_mlp.jax import export_function

        # stateless_call: the model as a pure function of its variables' values, bound here
        values = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables])
        return export_function(lambda x: model.stateless_call(*values, x, training=False)[0],  # concept: deploy
                               path, example) | {"exporter": "jax.export of model.stateless_call"}
    import torch  # on PyTorch a Keras model is an nn.Module: torch.export takes it

    batch = torch.export.Dim("batch")  # Keras's forward(*args): the dynamic axis of args[0]'s batch
    program = torch.export.export(model.eval(), (torch.from_numpy(example),), dynamic_shapes=(({0: batch},),))
    torch.export.save(program, path + ".pt2")  # concept: deploy
    return {"exporter": "torch.export.export + torch.export.save (.pt2)", "file": path + ".pt2"}


def load_deploy(file):
    if file.endswith(".jax_export"):
        from implementations.mnist_mlp.jax import load_deploy as load_jax_export

        return load_jax_export(file)
    if file.endswith(".pt2"):
        from implementations.mnist_mlp.pytorch import load_deploy as load_pt2

        return load_pt2(file)
    import tensorflow as tf

    loaded = tf.saved_model.load(file)  # concept: deploy
    return lambda x: loaded.serve(tf.constant(x)).numpy()


# %% tuned-train
# tuned: the same compile and fit, with compile's two performance settings. Measured on 2 threads, batch 128,
# primary -> tuned ms per step: MLP on TensorFlow 2.1 -> 1.0-1.15, on PyTorch 2.2-2.9 -> 1.35, on JAX 0.71 -> 0.65;
# CNN on TensorFlow 11.5 -> 9.2-10.
# - steps_per_execution=n: fit runs n steps per call of its compiled function (TensorFlow: a tf.while_loop in
#   the graph; JAX: n jitted steps dispatched back to back) and calls the callbacks once per n steps, so the
#   Python around every step (callbacks, logs, a sync) runs once per n. The PyTorch backend allows only 1.
#   n divides the epoch: an execution never runs into the next epoch's batches.
# - jit_compile=True: XLA on TensorFlow ("auto" leaves it off without a GPU), torch.compile of the train step
#   on PyTorch (about 10 s of compiling in the first step); JAX's step is jitted already. Not for the CNN:
#   XLA:CPU's max-pool gradient makes its TF step 8x slower (74 ms), and torch.compile gains nothing on it.
def tuned_train(model, spec, data, rec, optimizer):
    backend, cnn = keras.backend.backend(), spec.model == "cnn"
    n = steps_per_execution(spec, data)
    model.compile(optimizer=optimizer, loss=loss_fn, steps_per_execution=n,
                  jit_compile=backend == "jax" or not cnn)
    model.fit(batches(data, spec.epochs), steps_per_epoch=data.steps_per_epoch, epochs=spec.epochs,
              shuffle=False, callbacks=[EveryStep(rec)], verbose=0)
    return model


def steps_per_execution(spec, data):
    """The largest divisor of the epoch's steps up to 32 that leaves 8 executions an epoch or more, so that the
    first, which compiles, is at most an eighth of the steps timed (a full MNIST epoch, 468 steps: 26). 1 on
    PyTorch, and under `--init shared`: `dlrosetta parity` compares every step's loss, fit logs one per execution."""
    if keras.backend.backend() == "torch" or spec.init == "shared":
        return 1
    steps = data.steps_per_epoch
    return max(d for d in range(1, max(1, min(32, steps // 8)) + 1) if steps % d == 0)


class EveryStep(keras.callbacks.Callback):
    """Harness plumbing: the recorder's callback (one step timed per call), told about every step. fit calls it
    once per execution, `batch` the index of its last step; each of the n steps is recorded as 1/n of the
    execution's time, and with the n steps' mean loss (fit logs the epoch's running mean, so that is all it says)."""

    def __init__(self, rec):
        super().__init__()
        self.rec, self.callback = rec, rec.keras_callback()

    def set_model(self, model):
        super().set_model(model)
        self.callback.set_model(model)

    def on_epoch_begin(self, epoch, logs=None):
        self.steps, self.total = 0, 0.0  # steps run in this epoch, the sum of their losses

    def on_train_batch_end(self, batch, logs=None):
        n, total = batch + 1 - self.steps, (batch + 1) * float(logs["loss"])  # float: the sync
        for k in range(1, n + 1):  # the running mean after each of the n steps
            mean = (self.total + k * (total - self.total) / n) / (self.steps + k)
            self.callback.on_train_batch_end(self.steps + k - 1, {"loss": mean})
        times = self.rec.step_times  # the first of the n took the whole execution, the others ~0
        times[-n:] = [sum(times[-n:]) / n] * n
        self.steps, self.total = batch + 1, total

    def on_epoch_end(self, epoch, logs=None):
        self.callback.on_epoch_end(epoch, logs)
