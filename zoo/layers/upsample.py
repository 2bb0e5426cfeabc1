"""Sub-pixel upsampling (pixel shuffle), Shi et al. 2016, https://arxiv.org/abs/1609.05158."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class PixelShuffle(keras.layers.Layer):
    """Rearranges channels into space: `(B, H, W, C * s * s)` -> `(B, H * s, W * s, C)`.

    The channel order is that of `tf.nn.depth_to_space` (DCR). Put a convolution with
    `C * s * s` filters in front of it to get a learned upsampling by `s`.

    Args:
        scale: integer upsampling factor `s` (>= 1).
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, H, W, C * scale**2)` tensor.

    Example:
    >>> x = keras.ops.ones((2, 8, 8, 4 * 16))
    >>> PixelShuffle(4)(x).shape
    (2, 32, 32, 16)
    """

    def __init__(self, scale: int, **kwargs):
        super().__init__(**kwargs)
        if int(scale) != scale or scale < 1:
            raise ValueError(f"PixelShuffle scale must be a positive integer, got {scale}")
        self.scale = int(scale)

    def call(self, inputs):
        s = self.scale
        channels = inputs.shape[-1]
        if channels % (s * s):
            raise ValueError(f"PixelShuffle({s}) needs channels divisible by {s * s}, got {channels}")
        batch, height, width = ops.shape(inputs)[0], ops.shape(inputs)[1], ops.shape(inputs)[2]
        out_channels = channels // (s * s)
        x = ops.reshape(inputs, (batch, height, width, s, s, out_channels))  # (B, H, W, s, s, C)
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (B, H, s, W, s, C)
        return ops.reshape(x, (batch, height * s, width * s, out_channels))  # (B, H*s, W*s, C)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        s = self.scale
        return (batch, None if height is None else height * s, None if width is None else width * s,
                channels // (s * s))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="zoo")
class BicubicUpsampling(keras.layers.Layer):
    """Bicubic upsampling by an integer factor; works when height and width are unknown.

    `keras.layers.UpSampling2D(interpolation="bicubic")` and `keras.ops.image.resize` fail
    inside a traced function whose input height and width are `None` (Keras 3.15), so this
    layer calls `tf.image.resize` (TensorFlow backend only).

    Args:
        scale: integer upsampling factor.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(B, H, W, C)` tensor.

    Example:
    >>> BicubicUpsampling(2)(keras.ops.ones((1, 5, 7, 3))).shape
    (1, 10, 14, 3)
    """

    def __init__(self, scale: int, **kwargs):
        super().__init__(**kwargs)
        if int(scale) != scale or scale < 1:
            raise ValueError(f"BicubicUpsampling scale must be a positive integer, got {scale}")
        self.scale = int(scale)

    def call(self, inputs):
        height, width = ops.shape(inputs)[1], ops.shape(inputs)[2]
        size = (height * self.scale, width * self.scale)
        return tf.cast(tf.image.resize(inputs, size, method="bicubic"), inputs.dtype)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        s = self.scale
        return (batch, None if height is None else height * s, None if width is None else width * s,
                channels)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
