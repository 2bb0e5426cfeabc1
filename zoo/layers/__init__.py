"""Reusable Keras layers; each is registered for `.keras` saving under the package "zoo"."""

from zoo.layers.residual import ResidualBlock
from zoo.layers.upsample import BicubicUpsampling, PixelShuffle

__all__ = ["BicubicUpsampling", "PixelShuffle", "ResidualBlock"]
