"""Model families; each keras.Model subclass owns its losses, optimizers and steps."""

from zoo.models.dcgan import DCGAN, gradient_penalty
from zoo.models.dcgan_networks import build_dcgan_discriminator, build_dcgan_generator
from zoo.models.gan import GAN
from zoo.models.losses import global_count, global_mean
from zoo.models.masked_lm import MaskedTokenModel
from zoo.models.rbf import RBFNetwork
from zoo.models.sr_networks import build_sr_discriminator, build_sr_generator
from zoo.models.som import SOM
from zoo.models.som_rbf_attention import SomRbfAttentionClassifier
from zoo.models.srgan import SRGAN
from zoo.models.text_classifier import TextClassifier
from zoo.models.transformer_classifier import TransformerTextClassifier
from zoo.models.vae import VAE
from zoo.models.vae_networks import build_vae_decoder, build_vae_encoder

__all__ = ["DCGAN", "build_dcgan_discriminator", "build_dcgan_generator", "gradient_penalty",
           "GAN", "SRGAN", "build_sr_discriminator", "build_sr_generator", "global_count", "global_mean",
           "TextClassifier", "VAE", "build_vae_decoder", "build_vae_encoder", "RBFNetwork", "SOM",
           "TransformerTextClassifier", "SomRbfAttentionClassifier", "MaskedTokenModel"]
