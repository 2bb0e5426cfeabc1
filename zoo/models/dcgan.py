"""DCGAN: an image GAN with a selectable loss, optionally class-conditional.

Radford et al. 2016 (https://arxiv.org/abs/1511.06434) networks (`zoo.models.dcgan_networks`),
trained with one of three losses on the discriminator's logits D(x):

- "nonsaturating" (Goodfellow et al. 2014): D minimises softplus(-D(x)) + softplus(D(G(z))),
  G minimises softplus(-D(G(z))).
- "hinge" (Miyato et al. 2018): D minimises relu(1 - D(x)) + relu(1 + D(G(z))), G: -D(G(z)).
- "wgan-gp" (Gulrajani et al. 2017, https://arxiv.org/abs/1704.00028): the critic minimises
  D(G(z)) - D(x) + gp_weight * (||grad D(x_hat)||_2 - 1)^2 on x_hat = eps x + (1 - eps) G(z),
  eps ~ Uniform(0, 1) per example; G minimises -D(G(z)).

One `train_step` makes `n_critic` discriminator updates, then one generator update. It takes
`n_critic * B` real images and gives critic update k the rows k, k + n_critic, k + 2 n_critic,
...: a fresh batch of B per critic update, as in the WGAN-GP paper. (Strided rows, not
blocks, so each update sees the same examples on any number of replicas when B is a multiple
of the replica count.) The generator update draws B noise vectors.

Noise and interpolation weights are stateless draws seeded by (seed, step, use) for the whole
global batch; each replica keeps its own rows. So replicas draw different noise, and one
replica and two replicas draw identical noise per example. Every loss is a per-example value
reduced with `global_mean`, so logged values are true means and gradients are exact.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from zoo.models.gan import GAN
from zoo.models.losses import global_count, global_mean

LOSSES = ("nonsaturating", "hinge", "wgan-gp")
DEFAULT_N_CRITIC = {"nonsaturating": 1, "hinge": 1, "wgan-gp": 5}


def gradient_penalty(critic, real, fake, eps, labels=None):
    """`(||grad_x D(x_hat)||_2 - 1)^2` per example, x_hat = eps * real + (1 - eps) * fake.

    The norm is `sqrt(sum(g^2) + 1e-12)`, so the penalty and its gradient stay finite where
    the critic's gradient is exactly zero. Needs a critic without batch statistics (each
    example's gradient must depend on that example only).

    Args:
        critic: a model mapping images (and labels, when given) to `(B, 1)` scores.
        real, fake: `(B, H, W, C)` images.
        eps: `(B,)` interpolation weights in [0, 1].
        labels: `(B,)` labels for a conditional critic, else None.

    Returns:
        `(B,)` penalties.
    """
    eps = ops.reshape(ops.cast(eps, "float32"), (-1, 1, 1, 1))
    mixed = eps * ops.cast(real, "float32") + (1.0 - eps) * ops.cast(fake, "float32")  # (B, H, W, C)
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        scores = critic(mixed if labels is None else [mixed, labels], training=True)
        total = ops.sum(ops.cast(scores, "float32"))
    grads = tape.gradient(total, mixed)  # (B, H, W, C): example b's gradient of its own score
    norm = ops.sqrt(ops.sum(ops.square(grads), axis=(1, 2, 3)) + 1e-12)  # (B,)
    return ops.square(norm - 1.0)


def _d_loss(loss: str, real, fake):
    """Per-example discriminator loss from `(B,)` logits of real and generated images."""
    if loss == "nonsaturating":
        return ops.softplus(-real) + ops.softplus(fake)
    if loss == "hinge":
        return ops.relu(1.0 - real) + ops.relu(1.0 + fake)
    return fake - real


def _g_loss(loss: str, fake):
    return ops.softplus(-fake) if loss == "nonsaturating" else -fake


def _real_loss(loss: str, real):
    """The real-image part of the discriminator loss (what `test_step` reports)."""
    return {"nonsaturating": ops.softplus(-real), "hinge": ops.relu(1.0 - real)}.get(loss, -real)


def _slerp(z0: np.ndarray, z1: np.ndarray, steps: int) -> np.ndarray:
    """`(steps, D)` points on the great circle from z0 to z1 (White 2016; Gaussian latents)."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    cos = np.dot(z0 / np.linalg.norm(z0), z1 / np.linalg.norm(z1))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    return ((np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)).astype(np.float32)


@keras.saving.register_keras_serializable(package="zoo")
class DCGAN(GAN):
    """An image GAN: a generator from noise (and a label) and a discriminator or critic.

    Args:
        generator: model mapping `z (B, latent_dim)` (and `label (B,)` int when conditional)
            to images `(B, H, W, C)` in [-1, 1]; see `build_dcgan_generator`.
        discriminator: model mapping images (and labels) to logits `(B, 1)`.
        loss: "nonsaturating", "hinge" or "wgan-gp".
        n_critic: discriminator updates per generator update; None: 1, or 5 for "wgan-gp".
        gp_weight: weight of the gradient penalty ("wgan-gp" only; the paper's 10).
        num_classes: 0, or the number of labels of a class-conditional pair of nets.
        seed: seeds the training noise (with the step and the use of each draw).

    Call arguments:
        inputs: `z` or `[z, labels]`; returns the generator's images in [-1, 1].

    Example:
    >>> gan = DCGAN(build_dcgan_generator(64), build_dcgan_discriminator(), loss="hinge")  # doctest: +SKIP
    >>> gan.sample(16, seed=0).shape  # doctest: +SKIP
    (16, 28, 28, 1)
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, loss: str = "nonsaturating",
                 n_critic: int | None = None, gp_weight: float = 10.0, num_classes: int = 0,
                 seed: int = 0, **kwargs):
        super().__init__(generator, discriminator, **kwargs)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        self.loss_name = loss
        self.n_critic = DEFAULT_N_CRITIC[loss] if n_critic is None else int(n_critic)
        self.gp_weight, self.num_classes, self.seed = float(gp_weight), int(num_classes), int(seed)
        self._check_networks()
        self.latent_dim = int(generator.inputs[0].shape[-1])
        self.built = generator.built and discriminator.built  # both are built functional models

    def _check_networks(self) -> None:
        if self.n_critic < 1 or self.gp_weight < 0:
            raise ValueError(f"n_critic must be >= 1 and gp_weight >= 0, got {self.n_critic}, {self.gp_weight}")
        inputs = 2 if self.num_classes else 1
        for net in (self.generator, self.discriminator):
            if len(net.inputs) != inputs:
                raise ValueError(f"with num_classes={self.num_classes} the {net.name} must take {inputs} "
                                 f"input(s) (images or z{', labels' if inputs == 2 else ''}), it takes "
                                 f"{len(net.inputs)}")
        if self.loss_name == "wgan-gp" and any(isinstance(layer, keras.layers.BatchNormalization)
                                               for layer in self.discriminator.layers):
            raise ValueError("a WGAN-GP critic must not use batch norm (the gradient penalty is per "
                             "example): build it with norm='layer' or 'none'")

    @property
    def conditional(self) -> bool:
        """Whether `sample(label=...)` can choose the class."""
        return self.num_classes > 0

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """`(H, W, C)` of the generated images."""
        return tuple(int(d) for d in self.generator.output.shape[1:])

    # ------------------------------------------------------------------------- training

    def _unpack(self, data):
        """`(images, labels or None)` from `images` or `(images, labels[, ...])`."""
        images, labels = data, None
        if isinstance(data, tuple | list):
            images, labels = data[0], data[1] if len(data) > 1 else None
        if self.conditional and labels is None:
            raise ValueError("a conditional DCGAN trains on (images, labels) batches")
        labels = ops.convert_to_tensor(labels, "int32") if self.conditional else None
        return ops.convert_to_tensor(images), labels

    def _draw(self, like, step, use: int, uniform: bool = False):
        """This replica's rows of a stateless draw for the global batch: `(b, latent_dim)`
        normal noise, or `(b,)` Uniform(0, 1) with `uniform`."""
        context = tf.distribute.get_replica_context()
        replica = 0 if context is None else context.replica_id_in_sync_group
        local = ops.shape(like)[0]
        total = ops.cast(global_count(like), "int32")
        seed = tf.random.experimental.stateless_fold_in(tf.stack([tf.constant(self.seed, tf.int64), step]), use)
        if uniform:
            values = tf.random.stateless_uniform((total,), seed)
        else:
            values = tf.random.stateless_normal((total, self.latent_dim), seed)
        start = ops.cast(replica, "int32") * local  # replicas hold equal consecutive shares
        return values[start:start + local]

    def _g(self, z, labels, training):
        return self.generator(z if labels is None else [z, labels], training=training)

    def _d(self, images, labels, training):
        logits = self.discriminator(images if labels is None else [images, labels], training=training)
        return ops.cast(logits, "float32")[:, 0]  # (B,)

    def train_step(self, data):
        """`n_critic` discriminator updates, then one generator update on the fakes of the last
        one: one generator forward pass serves both (as PyTorch's DCGAN example does), the
        discriminator update seeing them through `stop_gradient`."""
        images, labels = self._unpack(data)  # (n_critic * B, H, W, C), (n_critic * B,) or None
        step = ops.cast(self.g_optimizer.iterations, "int64")
        n = self.n_critic

        def part(k):
            return images[k::n], None if labels is None else labels[k::n]

        parts = [self._critic_update(*part(k), step, k) for k in range(n - 1)]
        real, last_labels = part(n - 1)
        g_tape = tf.GradientTape()
        with g_tape:  # recorded once; the generator loss below continues on this tape
            fake = self._g(self._draw(real, step, 3 * (n - 1)), last_labels, training=True)  # (B, H, W, C)
        parts.append(self._critic_update(real, last_labels, step, n - 1, ops.stop_gradient(fake)))
        logs = {name: sum(p[name] for p in parts) / n for name in parts[0]}  # means over the updates
        with g_tape:
            g_loss = global_mean(_g_loss(self.loss_name, self._d(fake, last_labels, True)), global_count(real))
        self.apply_gradients(self.g_optimizer, g_tape, g_loss, self.generator.trainable_variables)
        logs["g_loss"] = g_loss
        return logs

    def _critic_update(self, real, labels, step, k: int, fake=None) -> dict:
        """One discriminator update on real rows vs fakes (fresh ones unless given); its logs
        (global means)."""
        # Counts and draws (cross-replica sums, nothing to differentiate) before the tape.
        count = global_count(real)
        if fake is None:
            fake = self._g(self._draw(real, step, 3 * k), labels, training=True)  # (B, H, W, C)
        eps = self._draw(real, step, 3 * k + 1, uniform=True) if self.loss_name == "wgan-gp" else None
        with tf.GradientTape() as tape:
            real_logits, fake_logits = self._d(real, labels, True), self._d(fake, labels, True)
            per_example = _d_loss(self.loss_name, real_logits, fake_logits)  # (B,)
            logs = {}
            if eps is not None:
                penalty = gradient_penalty(self.discriminator, real, fake, eps, labels)  # (B,)
                per_example = per_example + self.gp_weight * penalty
                logs["gradient_penalty"] = global_mean(penalty, count)
            d_loss = global_mean(per_example, count)
        self.apply_gradients(self.d_optimizer, tape, d_loss, self.discriminator.trainable_variables)
        return {"d_loss": d_loss, "real_score": global_mean(real_logits, count),
                "fake_score": global_mean(fake_logits, count), **logs}

    def test_step(self, data):
        """The discriminator on held-out real images: its real-image loss and mean score.
        A held-out score drifting away from the training `real_score` shows the discriminator
        overfitting (the heuristic of Karras et al. 2020, https://arxiv.org/abs/2006.06676)."""
        images, labels = self._unpack(data)
        logits = self._d(images, labels, False)
        count = global_count(images)
        return {"d_real_loss": global_mean(_real_loss(self.loss_name, logits), count),
                "real_score": global_mean(logits, count)}

    # ------------------------------------------------------------------------- sampling

    def _labels(self, n: int, label: int | None, rng: np.random.Generator | None = None):
        """`(n,)` int32 labels for the generator (None when unconditional)."""
        if not self.conditional:
            if label is not None:
                raise ValueError("this DCGAN is not class-conditional: it takes no label")
            return None
        if label is None:  # every class in turn (interpolation: one random class)
            return (np.arange(n) % self.num_classes if rng is None
                    else np.full(n, rng.integers(self.num_classes))).astype(np.int32)
        if not 0 <= int(label) < self.num_classes:
            raise ValueError(f"label {label} is out of range 0..{self.num_classes - 1}")
        return np.full(n, int(label), np.int32)

    def generate(self, z: np.ndarray, labels: np.ndarray | None = None, batch_size: int = 256) -> np.ndarray:
        """uint8 images `(N, H, W, C)` from latent vectors `(N, latent_dim)` (and labels)."""
        parts = []
        for i in range(0, len(z), batch_size):
            part = self._g(z[i:i + batch_size], None if labels is None else labels[i:i + batch_size], False)
            parts.append(ops.convert_to_numpy(part))
        images = np.concatenate(parts) if parts else np.zeros((0, *self.image_shape), np.float32)
        return np.clip(np.round((images.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)

    def sample(self, n: int, seed: int | None = None, label: int | None = None) -> np.ndarray:
        """`n` uint8 images `(n, H, W, C)`; the same `seed` gives the same bytes. Conditional
        models draw `label`, or every class in turn when it is None."""
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.latent_dim)).astype(np.float32)
        return self.generate(z, self._labels(n, label))

    def interpolate(self, steps: int, seed: int | None = None, label: int | None = None) -> np.ndarray:
        """`steps` uint8 images along a spherical path between two random latent points
        (one class throughout: `label`, or a random one)."""
        rng = np.random.default_rng(seed)
        z0, z1 = rng.standard_normal((2, self.latent_dim))
        return self.generate(_slerp(z0, z1, steps), self._labels(steps, label, rng))

    def get_config(self):
        return {**super().get_config(), "loss": self.loss_name, "n_critic": self.n_critic,
                "gp_weight": self.gp_weight, "num_classes": self.num_classes, "seed": self.seed}
