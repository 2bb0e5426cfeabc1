"""Model families; each keras.Model subclass owns its losses, optimizers and steps."""

from zoo.models.gan import GAN
from zoo.models.losses import global_count, global_mean
from zoo.models.sr_networks import build_sr_discriminator, build_sr_generator
from zoo.models.srgan import SRGAN

__all__ = ["GAN", "SRGAN", "build_sr_discriminator", "build_sr_generator", "global_count", "global_mean"]
