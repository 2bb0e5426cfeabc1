"""Model families; each keras.Model subclass owns its losses, optimizers and steps."""

from zoo.models.sr_networks import build_discriminator, build_generator
from zoo.models.srgan import SRGAN

__all__ = ["SRGAN", "build_discriminator", "build_generator"]
