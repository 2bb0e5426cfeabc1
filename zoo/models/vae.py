"""A variational autoencoder (Kingma & Welling 2014, https://arxiv.org/abs/1312.6114), beta-VAE
weighting (Higgins et al. 2017) and importance-weighted likelihood estimates (Burda et al.
2016, https://arxiv.org/abs/1509.00519), optionally class-conditional.

Likelihoods p(x | z): "bernoulli" (binary pixels; the decoder gives logits; training binarizes
each batch dynamically by sampling Bernoulli(pixel), fresh every step), "gaussian_fixed" (mean
from the decoder, standard deviation `gaussian_scale`) and "gaussian_learned" (mean and a
per-pixel log standard deviation from the decoder). Every value is in nats per image.

Noise under tf.distribute: each step draws the noise of the whole global batch from stateless
ops seeded by (seed, step) and every replica takes its own rows, so replicas draw different
noise and one replica computes exactly what two do (see PITFALLS.md).
"""

from __future__ import annotations

import copy
import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from zoo.models.losses import global_count, global_mean
from zoo.models.vae_networks import LIKELIHOODS, build_vae_decoder, build_vae_encoder

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LATENT, _PIXELS, _EVAL = 0, 1, 2  # noise streams


def check_unit_range(images: np.ndarray, what: str = "data") -> None:
    """Raise ValueError unless every value is in [0, 1] (a Bernoulli decoder's data)."""
    low, high = float(np.min(images)), float(np.max(images))
    if low < 0 or high > 1:
        raise ValueError(f"{what} has values from {low:g} to {high:g}, but the Bernoulli likelihood "
                         "needs pixel probabilities in [0, 1]: scale the images to [0, 1] (e.g. divide "
                         "0..255 values by 255) or use a Gaussian likelihood")


def _log_likelihood(x, params, likelihood: str, scale: float):
    """log p(x | decoder output), summed per example: `(B,)` nats."""
    params = ops.cast(params, "float32")
    if likelihood == "bernoulli":
        terms = x * params - ops.softplus(params)  # params: logits
    else:
        if likelihood == "gaussian_learned":
            params, log_scale = ops.split(params, 2, axis=-1)
            log_scale = ops.maximum(log_scale, -7.0)  # sigma >= 1e-3
        else:
            log_scale = ops.full_like(params, math.log(scale))
        terms = -0.5 * ops.square((x - params) * ops.exp(-log_scale)) - log_scale - _HALF_LOG_2PI
    return ops.sum(terms, axis=(1, 2, 3))


def _kl(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per example: `(B,)` nats."""
    return 0.5 * ops.sum(ops.square(mean) + ops.exp(log_var) - log_var - 1.0, axis=-1)


@keras.saving.register_keras_serializable(package="zoo")
class VAE(keras.Model):
    """A VAE that owns its ELBO training step, sampling and likelihood estimates.

    Args:
        encoder: `image [, one-hot label] -> [mean, log_var]` (`build_vae_encoder`).
        decoder: `z [, one-hot label] -> likelihood parameters` (`build_vae_decoder`).
        beta: weight of the KL term in the training loss (1: the ELBO).
        likelihood: "bernoulli", "gaussian_fixed" or "gaussian_learned" (module docstring).
        gaussian_scale: the standard deviation of "gaussian_fixed".
        dynamic_binarization: with "bernoulli", binarize every training batch by sampling.
        seed: seeds the training noise (with the step number).

    Call arguments:
        inputs: images `(B, H, W, C)` in [0, 1], or `(images, labels)` for a conditional model;
            returns the decoded mean of the posterior mean (a reconstruction).
    """

    def __init__(self, encoder: keras.Model, decoder: keras.Model, beta: float = 1.0,
                 likelihood: str = "bernoulli", gaussian_scale: float = 0.1,
                 dynamic_binarization: bool = True, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {likelihood!r}")
        self.encoder, self.decoder = encoder, decoder
        self.beta, self.likelihood, self.gaussian_scale = float(beta), likelihood, float(gaussian_scale)
        self.dynamic_binarization, self.seed = bool(dynamic_binarization), int(seed)
        self.image_shape = tuple(int(s) for s in encoder.inputs[0].shape[1:])
        self.latent_size = int(decoder.inputs[0].shape[-1])
        self.num_classes = int(encoder.inputs[1].shape[-1]) if len(encoder.inputs) > 1 else 0
        self.conditional = self.num_classes > 0
        self.trackers = [keras.metrics.Mean(name=n) for n in ("loss", "reconstruction", "kl", "negative_elbo")]
        self.built = encoder.built and decoder.built

    @classmethod
    def create(cls, image_shape=(28, 28, 1), latent_size: int = 32, width: int = 32, depth: int = 1,
               num_classes: int = 0, likelihood: str = "bernoulli", **kwargs) -> VAE:
        """A VAE with the zoo's ResNet-style encoder and decoder (vae_networks.py)."""
        encoder = build_vae_encoder(tuple(image_shape), latent_size, width, depth, num_classes)
        decoder = build_vae_decoder(tuple(image_shape), latent_size, width, depth, num_classes, likelihood)
        return cls(encoder, decoder, likelihood=likelihood, **kwargs)

    @property
    def metrics(self):
        return self.trackers  # not compile()'s unused "loss" tracker

    # ------------------------------------------------------------------ networks
    def _inputs(self, tensor, labels):
        tensor = ops.convert_to_tensor(tensor)
        if not self.conditional:
            return tensor
        if labels is None:
            raise ValueError("this VAE is class-conditional: pass labels")
        return [tensor, ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), self.num_classes)]

    def _encode(self, x, labels=None, training=False):
        mean, log_var = self.encoder(self._inputs(x, labels), training=training)
        return ops.cast(mean, "float32"), ops.cast(log_var, "float32")

    def _decode(self, z, labels=None, training=False):
        return ops.cast(self.decoder(self._inputs(z, labels), training=training), "float32")

    def _mean_image(self, params):
        """The decoded image in [0, 1]: Bernoulli probabilities or Gaussian means (clipped)."""
        if self.likelihood == "bernoulli":
            return ops.sigmoid(params)
        return ops.clip(params[..., :self.image_shape[-1]], 0.0, 1.0)

    def call(self, inputs, training=False):
        x, labels = (inputs[0], inputs[1]) if isinstance(inputs, list | tuple) else (inputs, None)
        mean, _ = self._encode(x, labels, training)
        return self._mean_image(self._decode(mean, labels, training))

    # ------------------------------------------------------------------ training
    def _unpack(self, data):
        x, labels = (data[0], data[1]) if isinstance(data, list | tuple) else (data, None)
        return ops.cast(x, "float32"), labels if self.conditional else None

    def _replica_noise(self, stream: int, step, x, count, tail, uniform=False):
        """This replica's rows of noise `(N, *tail)` for the global batch of `count` examples,
        seeded by (seed, stream, step): replica r of R takes rows r*B .. r*B + B - 1."""
        context = tf.distribute.get_replica_context()
        replica = 0 if context is None else tf.cast(context.replica_id_in_sync_group, tf.int32)
        local = tf.shape(x)[0]
        shape = tf.concat([[tf.cast(count, tf.int32)], tf.constant(tail, tf.int32)], axis=0)
        seed = tf.stack([tf.constant(self.seed * 3 + stream, tf.int64), tf.cast(step, tf.int64)])
        draw = (tf.random.stateless_uniform if uniform else tf.random.stateless_normal)(shape, seed)
        return draw[replica * local:replica * local + local]

    def _elbo_terms(self, x, labels, eps, training):
        """Per-example reconstruction NLL and KL `(B,)`, with z = mean + std * eps."""
        mean, log_var = self._encode(x, labels, training)
        z = mean + ops.exp(0.5 * log_var) * eps
        params = self._decode(z, labels, training)
        return -_log_likelihood(x, params, self.likelihood, self.gaussian_scale), _kl(mean, log_var)

    def _track(self, reconstruction, kl):
        for tracker, value in zip(self.trackers, (reconstruction + self.beta * kl, reconstruction,
                                                  kl, reconstruction + kl)):
            tracker.update_state(value)
        return {tracker.name: tracker.result() for tracker in self.trackers}

    def train_step(self, data):
        x, labels = self._unpack(data)  # (B, H, W, C) in [0, 1]
        count, step = global_count(x), self.optimizer.iterations
        if self.likelihood == "bernoulli" and self.dynamic_binarization:
            u = self._replica_noise(_PIXELS, step, x, count, self.image_shape, uniform=True)
            x = ops.cast(u < x, "float32")  # one Bernoulli(pixel) sample per pixel
        eps = self._replica_noise(_LATENT, step, x, count, (self.latent_size,))
        with tf.GradientTape() as tape:
            reconstruction, kl = self._elbo_terms(x, labels, eps, training=True)
            loss = global_mean(reconstruction + self.beta * kl, count)
        grads = tape.gradient(self.optimizer.scale_loss(loss), self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._track(reconstruction, kl)

    def test_step(self, data):
        """The single-sample ELBO terms on the data as given (binarize held-out data beforehand)."""
        x, labels = self._unpack(data)
        eps = self._replica_noise(_EVAL, 0, x, global_count(x), (self.latent_size,))
        return self._track(*self._elbo_terms(x, labels, eps, training=False))

    # ------------------------------------------------------------------ inference
    def encode(self, images, labels=None, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """`(mean, log_var)` of q(z | x), each `(N, latent_size)` float32."""
        parts = [self._encode(images[i:i + batch_size], _part(labels, i, batch_size))
                 for i in range(0, len(images), batch_size)]
        return tuple(np.concatenate([ops.convert_to_numpy(p[j]) for p in parts]) for j in (0, 1))

    def decode(self, z, labels=None, batch_size: int = 256) -> np.ndarray:
        """Decoded images `(N, H, W, C)` float32 in [0, 1] (Bernoulli: the probabilities)."""
        z = np.asarray(z, np.float32)
        return np.concatenate([ops.convert_to_numpy(self._mean_image(self._decode(
            z[i:i + batch_size], _part(labels, i, batch_size)))) for i in range(0, len(z), batch_size)])

    def _labels_for(self, n: int, label, rng) -> np.ndarray | None:
        if not self.conditional:
            if label is not None:
                raise ValueError("this VAE is not class-conditional: sample without a label")
            return None
        if label is None:
            return np.arange(n) % self.num_classes  # every class in turn
        labels = np.broadcast_to(np.asarray(label, np.int64), (n,))
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(f"labels must be in 0..{self.num_classes - 1}, got {label}")
        return labels

    def sample(self, n: int, seed: int | None = None, label=None) -> np.ndarray:
        """`n` images from the prior as uint8 `(n, H, W, C)` (Bernoulli: the mean probabilities);
        the same seed gives the same bytes. `label`: a class (or `(n,)` classes) of a conditional
        model; None draws every class in turn."""
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.latent_size)).astype(np.float32)
        return _to_uint8(self.decode(z, self._labels_for(n, label, rng)))

    def interpolate(self, steps: int, seed: int | None = None, label=None) -> np.ndarray:
        """uint8 `(steps, H, W, C)`: decoded points on the line between two prior draws."""
        rng = np.random.default_rng(seed)
        ends = rng.standard_normal((2, self.latent_size)).astype(np.float32)
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        if self.conditional and label is None:
            label = int(rng.integers(self.num_classes))
        return _to_uint8(self.decode((1 - t) * ends[0] + t * ends[1], self._labels_for(steps, label, rng)))

    def elbo(self, x, labels=None, seed: int = 0, batch_size: int = 256) -> np.ndarray:
        """Single-sample ELBO per example `(N,)` in nats, on `x` as given (binary for Bernoulli)."""
        x = self._checked(x)
        out = []
        for i in range(0, len(x), batch_size):
            eps = tf.random.stateless_normal((len(x[i:i + batch_size]), self.latent_size), (seed, i))
            reconstruction, kl = self._elbo_terms(x[i:i + batch_size], _part(labels, i, batch_size), eps, False)
            out.append(ops.convert_to_numpy(-(reconstruction + kl)))
        return np.concatenate(out).astype(np.float64)

    def importance_weighted_nll(self, x, k: int = 100, labels=None, batch_size: int = 32,
                                seed: int = 0, budget: int = 4096) -> np.ndarray:
        """-log p(x) per example `(N,)` in nats, estimated with `k` importance samples from q
        (Burda et al. 2016): -log mean_k p(x, z_k) / q(z_k | x), an upper bound that tightens as
        k grows. Samples go through the decoder in chunks of about `budget` images and the
        log-mean-exp runs over the chunks (max subtracted, float64), so memory does not grow with k."""
        x = self._checked(x)
        return np.concatenate([self._batch_nll(x[i:i + batch_size], _part(labels, i, batch_size), k,
                                               (seed, i * k), max(1, budget // len(x[i:i + batch_size])))
                               for i in range(0, len(x), batch_size)])

    def _batch_nll(self, x, labels, k: int, seed: tuple[int, int], chunk: int) -> np.ndarray:
        """IW-NLL `(B,)` of one batch: chunks of `chunk` samples, a running log-sum-exp (float64)."""
        mean, log_var = self._encode(x, labels)
        one_hot = ops.one_hot(labels, self.num_classes) if self.conditional else None
        top, total = np.full(len(x), -np.inf), np.zeros(len(x))
        for j in range(0, k, chunk):
            eps = tf.random.stateless_normal((len(x), min(chunk, k - j), self.latent_size), (seed[0], seed[1] + j))
            w = ops.convert_to_numpy(self._log_weights(x, one_hot, mean, log_var, eps)).astype(np.float64)
            new_top = np.maximum(top, w.max(axis=1))  # (B,)
            total = total * np.exp(top - new_top) + np.exp(w - new_top[:, None]).sum(axis=1)
            top = new_top
        return -(top + np.log(total / k))

    @tf.function(reduce_retracing=True)
    def _log_weights(self, x, one_hot, mean, log_var, eps):
        """log p(x | z) + log p(z) - log q(z | x) for z = mean + std * eps: `(B, c)`."""
        b, c = tf.shape(eps)[0], tf.shape(eps)[1]
        z = mean[:, None] + tf.exp(0.5 * log_var)[:, None] * eps  # (B, c, L)
        log_q = tf.reduce_sum(-0.5 * tf.square(eps) - 0.5 * log_var[:, None] - _HALF_LOG_2PI, -1)
        log_prior = tf.reduce_sum(-0.5 * tf.square(z) - _HALF_LOG_2PI, -1)
        flat = tf.reshape(z, (b * c, self.latent_size))
        inputs = flat if one_hot is None else [flat, tf.repeat(one_hot, c, axis=0)]
        params = tf.cast(self.decoder(inputs, training=False), tf.float32)
        log_px = _log_likelihood(tf.repeat(tf.cast(x, tf.float32), c, axis=0), params,
                                 self.likelihood, self.gaussian_scale)
        return tf.reshape(log_px, (b, c)) + log_prior - log_q

    def _checked(self, x) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self.likelihood == "bernoulli":
            check_unit_range(x)
        return x

    # ------------------------------------------------------------------ saving
    def get_config(self):
        return {**super().get_config(), "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder), "beta": self.beta,
                "likelihood": self.likelihood, "gaussian_scale": self.gaussian_scale,
                "dynamic_binarization": self.dynamic_binarization, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)  # deserializing empties the nested dicts
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _part(labels, start: int, size: int):
    return None if labels is None else np.asarray(labels)[start:start + size]


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
