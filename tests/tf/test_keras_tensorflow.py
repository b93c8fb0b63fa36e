"""Keras 3 on the TensorFlow backend: the shared Keras tests (tests/keras_family.py) through the real runner.
Fails, never skips, where Keras or TensorFlow is missing."""
import pytest

from keras_family import (test_linreg_real_datasets, test_linreg_synthetic_full_batch,  # noqa: F401
                          test_linreg_synthetic_sgd_and_minibatch, test_mnist_smoke_every_variant,
                          test_mnist_stops_at_target, test_mnist_tensorboard_variant)


@pytest.fixture
def framework():
    return "keras-tensorflow"
