"""MNIST CNN in Keras 3: the keras-io mnist_convnet model, on TensorFlow, JAX or PyTorch (KERAS_BACKEND)."""
import keras

# trained exactly like the MLP: compile, one fit over the harness's batches, same predict/save/export
# (on JAX the exported MaxPool has a 4-axis window that onnxruntime rejects: the cell reports it)
from implementations.mnist_mlp.keras import (POLICIES, count_params, export_deploy, export_onnx, load,  # noqa: F401
                                             load_deploy, loss_fn, precision_used, predict, save, train,
                                             with_shared_init)  # concepts-from: mnist_mlp/keras.py

VARIANTS = {
    "sequential": "keras.Sequential: a stack of layers, the keras-io mnist_convnet style",
    "functional": "functional API: keras.Input, layers called on tensors, keras.Model(inputs, outputs)",
}


# %% model
def build_model(spec):
    keras.utils.set_random_seed(spec.seed)  # the initialisers draw from Keras's global seed  # concept: seed
    keras.config.set_dtype_policy(POLICIES[spec.precision])  # the layers' dtypes: see the MLP's precision cell
    conv = dict(kernel_size=spec.kernel_size, activation="relu")  # valid padding, channels last
    if spec.variant == "functional":
        inputs = keras.Input(shape=spec.input_shape)
        x = inputs
        for filters in spec.conv_filters:
            x = keras.layers.Conv2D(filters, **conv)(x)
            x = keras.layers.MaxPooling2D(spec.pool_size)(x)
        x = keras.layers.Flatten()(x)
        outputs = keras.layers.Dense(spec.num_classes)(x)  # logits: the loss applies the softmax
        model = keras.Model(inputs, outputs)  # concept: params
    else:
        model = keras.Sequential([keras.Input(shape=spec.input_shape)])  # concept: params
        for filters in spec.conv_filters:
            model.add(keras.layers.Conv2D(filters, **conv))
            model.add(keras.layers.MaxPooling2D(spec.pool_size))
        model.add(keras.layers.Flatten())
        model.add(keras.layers.Dense(spec.num_classes))  # logits: the loss applies the softmax
    return with_shared_init(model, spec)
