"""Linear regression Y = XA + b in Keras 3: one Dense unit, SGD on the mean squared error, fit.
One file for three backends (TensorFlow, JAX, PyTorch): Keras reads KERAS_BACKEND when imported."""
import keras

VARIANTS = {
    "sequential": "keras.Sequential([Input, Dense(1)]), compile(SGD, MSE), fit",
    "accumulate": "the same model, fit on single samples with SGD(gradient_accumulation_steps=k): one update per k "
                  "samples, the mini-batch's (gradient accumulation; mini-batch mode only)",
}


# %% model
def build_model(spec):
    # Dense(1) is XA + b; zeros instead of Keras's Glorot-uniform kernel, as in every framework
    return keras.Sequential([keras.Input(shape=(spec.d,)),  # concept: params
                             keras.layers.Dense(spec.n_outputs, kernel_initializer="zeros")])


def count_params(model):
    return model.count_params()


# %% loss
loss_fn = keras.losses.MeanSquaredError()  # mean over samples of (XA + b - Y)²  # concept: loss


# %% train
def batches(data, epochs):
    """The harness's batches, epoch after epoch, as one stream of (x, y) numpy pairs."""
    for epoch in range(epochs):
        yield from data.batches(epoch)  # concept: batching


def single_samples(data, epochs):
    """The same stream cut into one-row batches: the accumulate variant's k samples are one mini-batch."""
    for x, y in batches(data, epochs):
        for i in range(len(x)):
            yield x[i:i + 1], y[i:i + 1]


# concept-absent: zero-grad: fit takes fresh gradients every step (on PyTorch it calls zero_grad itself)
# concept-absent: device: Keras runs on its backend's default device, the GPU when one is visible
def train(model, spec, data, rec):
    if spec.variant == "accumulate":  # every optimizer takes it: gradients are averaged over k calls, then applied
        k, stream = spec.batch_size, single_samples(data, spec.epochs)
        optimizer = keras.optimizers.SGD(spec.lr, gradient_accumulation_steps=k)  # concept: optimizer
    else:
        k, stream = 1, batches(data, spec.epochs)
        optimizer = keras.optimizers.SGD(spec.lr)  # concept: optimizer
    model.compile(optimizer=optimizer, loss=loss_fn)  # concept: jit
    # the harness's batch order instead of fit's shuffling: a generator, steps_per_epoch per epoch
    model.fit(stream, steps_per_epoch=data.steps_per_epoch * k, epochs=spec.epochs,
              shuffle=False, callbacks=[rec.keras_callback()], verbose=0)  # concept: gradient, step
    return model


# %% evaluate
# concept-absent: mode: fit calls the layers with training=True, predict_on_batch with training=False
def predict(model, x):
    return model.predict_on_batch(x)  # one forward pass, a numpy array on every backend  # concept: forward


# %% save
def save(model, path):
    model.save(path + ".keras")  # concept: save-load


def load(spec, path):
    return keras.saving.load_model(path + ".keras")  # concept: save-load


# %% export
def export_onnx(model, path, example):
    model.export(path, format="onnx", verbose=False)  # tf2onnx, jax2onnx or torch.onnx  # concept: export
    return {"exporter": f"keras model.export(format='onnx'), {keras.backend.backend()} backend"}
