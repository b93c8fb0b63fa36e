"""Linear regression Y = XA + b in Keras 3: one Dense unit, SGD on the mean squared error, fit.
One file for three backends (TensorFlow, JAX, PyTorch): Keras reads KERAS_BACKEND when imported."""
import keras

VARIANTS = {"sequential": "keras.Sequential([Input, Dense(1)]), compile(SGD, MSE), fit"}


# %% model
def build_model(spec):
    # Dense(1) is XA + b; zeros instead of Keras's Glorot-uniform kernel, as in every framework
    return keras.Sequential([keras.Input(shape=(spec.d,)),
                             keras.layers.Dense(spec.n_outputs, kernel_initializer="zeros")])


def count_params(model):
    return model.count_params()


# %% loss
loss_fn = keras.losses.MeanSquaredError()  # mean over samples of (XA + b - Y)²


# %% train
def batches(data, epochs):
    """The harness's batches, epoch after epoch, as one stream of (x, y) numpy pairs."""
    for epoch in range(epochs):
        yield from data.batches(epoch)


def train(model, spec, data, rec):
    model.compile(optimizer=keras.optimizers.SGD(spec.lr), loss=loss_fn)
    # the harness's batch order instead of fit's shuffling: a generator, steps_per_epoch per epoch
    model.fit(batches(data, spec.epochs), steps_per_epoch=data.steps_per_epoch, epochs=spec.epochs,
              shuffle=False, callbacks=[rec.keras_callback()], verbose=0)
    return model


# %% evaluate
def predict(model, x):
    return model.predict_on_batch(x)  # one forward pass, a numpy array on every backend


# %% save
def save(model, path):
    model.save(path + ".keras")


def load(spec, path):
    return keras.saving.load_model(path + ".keras")


# %% export
def export_onnx(model, path, example):
    model.export(path, format="onnx", verbose=False)  # tf2onnx, jax2onnx or torch.onnx, by backend
    return {"exporter": f"keras model.export(format='onnx'), {keras.backend.backend()} backend"}
