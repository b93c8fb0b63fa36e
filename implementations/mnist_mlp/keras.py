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
