"""Reusable Keras layers; each is registered for `.keras` saving under the package "zoo"."""

from zoo.layers.attention import AttentionPooling
from zoo.layers.rbf import RBF
from zoo.layers.residual import ResidualBlock
from zoo.layers.som import SelfOrganizingMap
from zoo.layers.tokenizer import TextTokenizer
from zoo.layers.transformer import PositionEmbedding, TransformerEncoder
from zoo.layers.upsample import BicubicUpsampling, PixelShuffle

__all__ = ["AttentionPooling", "RBF", "BicubicUpsampling", "PixelShuffle", "ResidualBlock", "SelfOrganizingMap",
           "PositionEmbedding", "TextTokenizer", "TransformerEncoder"]
