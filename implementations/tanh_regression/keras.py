"""Tanh regression d -> H (tanh) -> 1 in Keras 3: Dense layers wired by hand (functional API) or stacked in
keras.Sequential; compile with SGD or Adam on the mean squared error, fit. One file for three backends."""
import keras

# the loss (MSE) and batch stream are linear regression's; shared init, predict, save and export the MLP's
from implementations.linear_regression.keras import batches, loss_fn  # noqa: F401
from implementations.mnist_mlp.keras import (  # noqa: F401  # concepts-from: mnist_mlp/keras.py
    count_params, export_onnx, load, predict, save, with_shared_init)

VARIANTS = {
    "modules": "explicit layer objects: hidden = Dense(H, tanh), out = Dense(1), called on keras.Input, keras.Model",
    "sequential": "keras.Sequential([Input, Dense(H, activation='tanh'), Dense(1)])",
}


# %% model
def build_model(spec):
    keras.utils.set_random_seed(spec.seed)  # the initialisers draw from Keras's global seed  # concept: seed
    if spec.variant == "sequential":  # the stack owns its layers: model.weights lists theirs in order
        model = keras.Sequential([keras.Input(shape=(spec.d,)),  # concept: params
                                  keras.layers.Dense(spec.hidden, activation="tanh"),
                                  keras.layers.Dense(1)])
    else:  # keras.Model collects the weights of every layer on the path from inputs to outputs
        hidden = keras.layers.Dense(spec.hidden, activation="tanh", name="hidden")  # concept: params
        out = keras.layers.Dense(1, name="out")
        inputs = keras.Input(shape=(spec.d,))
        model = keras.Model(inputs, out(hidden(inputs)))  # concept: forward
    return with_shared_init(model, spec)


# %% train
def make_optimizer(spec):
    if spec.optimizer == "adam":  # "epsilon hat"; Keras's default epsilon is 1e-7, torch's and optax's 1e-8
        epsilon = {} if spec.adam_eps is None else {"epsilon": spec.adam_eps}
        return keras.optimizers.Adam(spec.lr, beta_1=spec.beta1, beta_2=spec.beta2, **epsilon)  # concept: optimizer
    return keras.optimizers.SGD(spec.lr)  # concept: optimizer


# concept-absent: zero-grad: fit takes fresh gradients every step (on PyTorch it calls zero_grad itself)
# concept-absent: device: Keras runs on its backend's default device, the GPU when one is visible
def train(model, spec, data, rec):
    model.compile(optimizer=make_optimizer(spec), loss=loss_fn)  # concept: jit
    # the harness's batch order instead of fit's shuffling: a generator, steps_per_epoch per epoch
    model.fit(batches(data, spec.epochs), steps_per_epoch=data.steps_per_epoch, epochs=spec.epochs,
              callbacks=[rec.keras_callback()], verbose=0)  # concept: gradient, step
    return model
