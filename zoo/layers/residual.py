"""Residual convolution block without normalization (EDSR, https://arxiv.org/abs/1707.02921)."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="zoo")
class ResidualBlock(keras.layers.Layer):
    """`x + residual_scale * conv(relu(conv(x)))` with two 3x3 convolutions of `filters` channels.

    No batch normalization: EDSR showed it hurts super-resolution, and without it the
    block computes the same thing on any number of replicas.

    Args:
        filters: channels of both convolutions; must equal the input's channels.
        kernel_size: size of the square convolution kernels.
        residual_scale: factor on the residual branch (0.1 keeps wide, deep stacks stable).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(B, H, W, filters)` tensor.

    Example:
    >>> block = ResidualBlock(16)
    >>> block(keras.ops.ones((1, 8, 8, 16))).shape
    (1, 8, 8, 16)
    """

    def __init__(self, filters: int, kernel_size: int = 3, residual_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.residual_scale = residual_scale
        conv = dict(filters=filters, kernel_size=kernel_size, padding="same", dtype=self.dtype_policy)
        self.conv1 = keras.layers.Conv2D(activation="relu", name="conv1", **conv)
        self.conv2 = keras.layers.Conv2D(name="conv2", **conv)

    def build(self, input_shape):
        if input_shape[-1] != self.filters:
            raise ValueError(f"ResidualBlock({self.filters}) got {input_shape[-1]} input channels")
        self.conv1.build(input_shape)
        self.conv2.build(input_shape)

    def call(self, inputs):
        return inputs + self.residual_scale * self.conv2(self.conv1(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "residual_scale": self.residual_scale}
