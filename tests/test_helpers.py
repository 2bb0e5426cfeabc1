"""The shared test helpers catch what they promise to catch."""

import keras
import pytest
from helpers import check_layer, stderr_lines


@keras.saving.register_keras_serializable(package="zoo_tests")
class _ForgetsItsArgument(keras.layers.Layer):
    """A layer whose get_config drops `factor`: loading it silently changes the model."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):  # forgets "factor" (without this override Keras 3 would record it)
        return super().get_config()


def test_check_layer_catches_incomplete_config():
    with pytest.raises(AssertionError):
        check_layer(_ForgetsItsArgument(3.0), (2, 4))


def test_check_layer_passes_a_keras_layer():
    assert check_layer(keras.layers.Dense(3), (2, 5)).shape == (2, 3)


def test_stderr_lines_drops_tensorflow_start_up_noise():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1795431974.968496    4500 port.cc:153] oneDNN custom operations are on.\n"
            "E0000 00:00:1795431756.412381    3149 cuda_platform.cc:52] failed call to cuInit\n"
            "To enable the following instructions: AVX2 AVX512F, in other operations, rebuild\n"
            "error: model x.keras does not exist\n")
    assert stderr_lines(text) == ["error: model x.keras does not exist"]
