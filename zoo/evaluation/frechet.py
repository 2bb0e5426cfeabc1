"""Frechet classifier distance (FCD): an offline sample-quality score. It is NOT FID.

FID (Heusel et al. 2017, https://arxiv.org/abs/1706.08500) compares the Inception-v3 pool
features of generated and real images. Inception weights cannot be downloaded here, so zoo
uses the same formula on the features of a small CNN that it trains on the same data and
ships as an asset (`zoo/assets/fcd/mnist.keras`, retrained by
`python tools/train_fcd_classifier.py`; see `zoo/assets/fcd/README.md`):

1. images (uint8 0..255, or float in [0, 1]) -> float32 in [0, 1], shape `(N, 28, 28, 1)`;
2. features = the classifier's penultimate layer (the layer named "features": Dense 128,
   ReLU) -> `(N, 128)`;
3. mu = mean of the features, sigma = their covariance (float64, N - 1 in the denominator);
4. FCD = |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1^1/2 sigma2 sigma1^1/2)^1/2)
   (`zoo.evaluation.metrics.frechet_distance`).

Lower is better; 0 means the same feature statistics. Numbers are comparable only with the same
classifier file and the same sample counts (the estimate is biased upwards for small N), so
report the floor: held-out real images against the training images, with as many images as
samples. Never compare an FCD to published FID numbers.

Example:
>>> fcd = FrechetClassifierDistance()  # doctest: +SKIP
>>> fcd.distance(model.sample(5000, seed=0), train_images)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from zoo.errors import UserError

DEFAULT_CLASSIFIER = "assets:fcd/mnist.keras"
FEATURE_LAYER = "features"  # the name of the penultimate layer in a classifier made by the tool
RETRAIN = "python tools/train_fcd_classifier.py --data DATA --out CLASSIFIER.keras"

Statistics = tuple[np.ndarray, np.ndarray]  # mu (D,), sigma (D, D), float64


class FrechetClassifierDistance:
    """Frechet distance between image sets on the features of a zoo-trained classifier.

    Args:
        classifier: a `.keras` classifier made by `tools/train_fcd_classifier.py` (path, or
            `assets:NAME` for an embedded one); loaded in Keras safe mode.

    Attributes:
        image_shape: `(H, W, C)` the classifier expects.
        classifier: the path it was loaded from (for reports).

    Raises:
        UserError: the classifier is missing, damaged, or has no layer named "features".
    """

    def __init__(self, classifier: str = DEFAULT_CLASSIFIER):
        from zoo.data.assets import resolve_source
        from zoo.saving import load

        self.classifier = classifier
        path = resolve_source(classifier)
        model = load(path, compile=False)
        try:
            layer = model.get_layer(FEATURE_LAYER)
        except ValueError:
            raise UserError(f"classifier {classifier} has no layer named {FEATURE_LAYER!r}: pass a "
                            f"classifier made by `{RETRAIN}`") from None
        import keras

        self._extractor = keras.Model(model.inputs, layer.output)
        self.image_shape: tuple[int, int, int] = tuple(int(d) for d in model.inputs[0].shape[1:])
        self.feature_size = int(layer.output.shape[-1])
        self._cache: dict[tuple, Statistics] = {}
        self._sizes: dict[tuple, int] = {}

    def features(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """`(N, D)` float32 penultimate-layer features of `(N, H, W, C)` images.

        Args:
            images: uint8 with values 0..255, or float with values in [0, 1].
            batch_size: images per forward pass.

        Raises:
            UserError: the images do not have the classifier's shape, or floats outside [0, 1].
        """
        x = self._to_unit(images)
        return self._extractor.predict(x, batch_size=batch_size, verbose=0).astype(np.float32)

    def statistics(self, images: np.ndarray) -> Statistics:
        """Mean `(D,)` and covariance `(D, D)` (float64) of the images' features."""
        return feature_statistics(self.features(images))

    def distance(self, a: np.ndarray | Statistics, b: np.ndarray | Statistics) -> float:
        """The FCD between two image sets; each is `(N, H, W, C)` images or `(mu, sigma)`."""
        from zoo.evaluation.metrics import frechet_distance

        return frechet_distance(*self.as_statistics(a), *self.as_statistics(b))

    def source_statistics(self, source: str, split: str = "train", limit: int | None = None) -> Statistics:
        """Statistics of the images of a data source (`zoo.data.load_images`), resized to the
        classifier's shape; computed once per instance, source, split and limit."""
        key = (source, split, limit)
        if key not in self._cache:
            images = self.load(source, split, limit)
            self._cache[key], self._sizes[key] = self.statistics(images), len(images)
        return self._cache[key]

    def source_size(self, source: str, split: str = "train", limit: int | None = None) -> int:
        """How many images `source_statistics` used for these arguments."""
        self.source_statistics(source, split, limit)
        return self._sizes[(source, split, limit)]

    def load(self, source: str, split: str = "train", limit: int | None = None) -> np.ndarray:
        """float32 images in [0, 1] of a data source, in the classifier's shape."""
        from zoo.data import load_images

        height, width, channels = self.image_shape
        images, _, _ = load_images(source, split, channels=channels, size=(height, width), limit=limit)
        return images

    def as_statistics(self, value: np.ndarray | Statistics) -> Statistics:
        """`(mu, sigma)` as given, or the statistics of `(N, H, W, C)` images."""
        if isinstance(value, tuple | list) and len(value) == 2:
            mu, sigma = (np.asarray(v, np.float64) for v in value)
            if mu.shape == (self.feature_size,) and sigma.shape == (self.feature_size,) * 2:
                return mu, sigma
        return self.statistics(np.asarray(value))

    def _to_unit(self, images: np.ndarray) -> np.ndarray:
        """uint8 0..255 or float 0..1 -> float32 0..1, checking the shape."""
        images = np.asarray(images)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape or len(images) == 0:
            raise UserError(f"the Frechet classifier distance with {self.classifier} needs images of "
                            f"shape (N, {', '.join(map(str, self.image_shape))}), got {images.shape}; "
                            f"for other data, retrain the classifier on it: `{RETRAIN}`")
        if images.dtype == np.uint8:
            return images.astype(np.float32) / np.float32(255.0)
        images = images.astype(np.float32)
        if images.min() < 0.0 or images.max() > 1.0:
            raise UserError(f"float images must have values in [0, 1], got {images.min():.3g}.."
                            f"{images.max():.3g}; pass uint8 images for values 0..255")
        return images


def feature_statistics(features: np.ndarray) -> Statistics:
    """Mean and covariance (float64, N - 1 denominator) of `(N, D)` features; N >= 2."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise UserError(f"the Frechet distance needs at least 2 images, got {len(features)}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def sample_quality(model: Any, real_train: np.ndarray | Statistics, real_test: np.ndarray | Statistics,
                   n: int, seed: int | None = 0,
                   scorer: FrechetClassifierDistance | None = None) -> dict:
    """FCD of `n` samples of a generative model against real training images, and the floor.

    Args:
        model: anything with `sample(n, seed=)` returning `(n, H, W, C)` uint8 images.
        real_train: the training images (or their statistics from `scorer.statistics`).
        real_test: held-out images (or statistics); `held_out_subset(real_test, n)` is used
            for the floor, so that it has as many images as there are samples.
        n: number of samples (>= 2).
        seed: sampling seed (the same seed gives the same score).
        scorer: the FCD to use; default `default_scorer()` (the shipped MNIST classifier).

    Returns:
        `{"fcd", "fcd_floor", "fcd_samples", "fcd_floor_samples", "fcd_classifier"}`: the
        distance of the samples to the training images, the distance of `fcd_floor_samples`
        held-out images to them (what a perfect model would score, up to noise), and the path
        of the classifier.
    """
    if n < 2:
        raise UserError(f"the Frechet classifier distance needs at least 2 samples, not {n}")
    scorer = scorer or default_scorer()
    train = scorer.as_statistics(real_train)
    if isinstance(real_test, tuple):
        test, n_test = real_test, None
    else:
        test, n_test = held_out_subset(np.asarray(real_test), n), min(n, len(real_test))
    samples = model.sample(n, seed=seed)
    return {"fcd": scorer.distance(samples, train), "fcd_floor": scorer.distance(test, train),
            "fcd_samples": n, "fcd_floor_samples": n_test, "fcd_classifier": scorer.classifier}


def held_out_subset(images: np.ndarray, n: int) -> np.ndarray:
    """All images when there are at most `n`, else a fixed random subset of `n` (seed 0).

    Not the first `n`: MNIST's test set is ordered (its first 5000 digits are cleaner than the
    last 5000; their FCD to each other is about 13, against 0.65 for all 10k vs train).
    """
    if len(images) <= n:
        return images
    return images[np.sort(np.random.default_rng(0).choice(len(images), n, replace=False))]


DEFAULT_DATA = "assets:mnist"  # what the default classifier was trained on
DEFAULT_SAMPLES = 5000


@functools.cache
def default_scorer() -> FrechetClassifierDistance:
    """The FCD of the shipped MNIST classifier, loaded once per process."""
    return FrechetClassifierDistance(DEFAULT_CLASSIFIER)


def can_score(model: Any, scorer: FrechetClassifierDistance | None = None) -> bool:
    """Whether `model` has `sample` and its samples have the classifier's image shape."""
    if not callable(getattr(model, "sample", None)):
        return False
    scorer = scorer or default_scorer()
    return tuple(np.shape(model.sample(2, seed=0))[1:]) == scorer.image_shape


def evaluate_generator(model: Any, data: str = DEFAULT_DATA, n: int = DEFAULT_SAMPLES, seed: int | None = 0,
                       limit: int | None = None, scorer: FrechetClassifierDistance | None = None,
                       progress: Callable[[list[str]], Iterable[str]] = iter) -> dict:
    """`sample_quality` against the train and test splits of a data source (`zoo eval`).

    Args:
        model: a generative model with `sample(n, seed=)`.
        data: the source of real images (`zoo.data.load_images`), resized to the classifier's shape.
        n: samples drawn; the floor uses min(n, test images) held-out images.
        seed: sampling seed.
        limit: at most this many real images per split (default all).
        scorer: default: the shipped MNIST classifier.
        progress: wraps the list of stage names (e.g. a progress bar).

    Returns:
        `sample_quality`'s report plus "fcd_data", "fcd_train_images" and "fcd_seed".
    """
    scorer = scorer or default_scorer()
    done: dict[str, Any] = {}
    stages: dict[str, Callable[[], Any]] = {
        "training images": lambda: scorer.source_statistics(data, "train", limit),
        "held-out images": lambda: scorer.load(data, "test", limit),
        "samples": lambda: sample_quality(model, done["training images"], done["held-out images"],
                                          n, seed, scorer)}
    for stage in progress(list(stages)):
        done[stage] = stages[stage]()
    return {**done["samples"], "fcd_data": data, "fcd_train_images": scorer.source_size(data, "train", limit),
            "fcd_seed": seed}
