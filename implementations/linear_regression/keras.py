"""Linear regression Y = XA + b in Keras 3: one Dense unit, SGD on the mean squared error, fit.
One file for three backends (TensorFlow, JAX, PyTorch): Keras reads KERAS_BACKEND when imported."""
import keras

VARIANTS = {"sequential": "keras.Sequential([Input, Dense(1)]), compile(SGD, MSE), fit"}


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


# concept-absent: zero-grad: fit takes fresh gradients every step (on PyTorch it calls zero_grad itself)
# concept-absent: device: Keras runs on its backend's default device, the GPU when one is visible
def train(model, spec, data, rec):
    model.compile(optimizer=keras.optimizers.SGD(spec.lr), loss=loss_fn)  # concept: optimizer, jit
    # the harness's batch order instead of fit's shuffling: a generator, steps_per_epoch per epoch
    model.fit(batches(data, spec.epochs), steps_per_epoch=data.steps_per_epoch, epochs=spec.epochs,
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
