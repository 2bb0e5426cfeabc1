"""Explanations of image models: integrated gradients, occlusion, LIME, SHAP and, for the hybrid
classifier, its row attention; written as OUT.png (panels side by side) and a self-contained OUT.html.

Every explanation attributes one scalar f(x) per image to the input pixels:

- the hybrid classifier (has `predict_proba` and `image_shape`): the softmax probability of the
  class the model predicts for x (that class stays fixed along the path); the row attention of
  `predict_proba` is drawn beside the image.
- a VAE (has `encoder`, `latent_size`, `image_shape`): KL(q(z|x) || N(0, I)) in nats, the
  information the latent code holds about x (the ELBO's "rate"); a class-conditional VAE: the
  mean over its classes.
- super-resolution (has `upscale`, `scale`, `generator`): the mean BT.601 luma (0.299 R + 0.587 G
  + 0.114 B of the unclipped generator output, [0, 1] units) of the central window of the
  upscaled image, half its height and width: the window follows the image's size. The
  generator runs only on the input the window depends on, the window's own input pixels and
  `receptive_reach(generator)` more on each side (a bound on its receptive field): f and every
  map are those of the whole image's upscale, at a fraction of the cost on a large image. A
  generator with a layer of unknown reach reads the whole image.

- **Integrated gradients** (Sundararajan et al. 2017, https://arxiv.org/abs/1703.01365): a black
  (all-zero) baseline, the path integral by the trapezoid rule over `steps` intervals (gradients
  at `steps + 1` points, computed in batches). Completeness says sum(attributions) =
  f(x) - f(baseline); the report gives the error of this Riemann sum per image.
- **Occlusion** (Zeiler & Fergus 2014, https://arxiv.org/abs/1311.2901): square patches of side
  `p = max(1, round(min(H, W) / 7))` (4 on 28x28 MNIST) at stride `max(1, p // 2)` (the last
  patch of a row or column is moved to touch the edge), filled with the baseline value 0. A
  pixel's value is the mean of f(x) - f(x with the patch blacked out) over the patches covering it.
- **Row attention**: the hybrid classifier's attention weights over image rows.
- **LIME** and **SHAP** (opt-in: `methods=["lime", "shap"]`) on the same players, quickshift
  superpixels with lime's defaults (a patch grid without scikit-image; `zoo.explain.superpixels`),
  hidden by the baseline value 0 (black): LIME as `lime_image.LimeImageExplainer`
  (`zoo.explain.superpixels.lime_image`), SHAP by Kernel SHAP (`zoo.explain.shap`), whose values
  sum to f(x) - f(black) (the efficiency error is reported). Their maps spread each
  superpixel's number evenly over its pixels. `samples` copies / coalitions per image.
- **Deletion test** (faithfulness): the image is cut into a grid of non-overlapping `p` x `p`
  patches; each explainer ranks them (sum of its map over the patch; row attention: the summed
  weight of the patch's rows, ties broken at random); blacking out its top k patches should
  lower f(x) more than blacking out k random ones (mean of `DRAWS` seeded draws).

Channels follow the model (gray and RGB images are converted); a model with a fixed input size
refuses images of another size (UserError naming both sizes); super-resolution takes any size.
"""

from __future__ import annotations

import html
import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from PIL import Image, ImageDraw

from zoo.data.images import refuse_overwriting
from zoo.errors import UserError
from zoo.explain import render, superpixels
from zoo.explain.shap import kernel_shap
from zoo.fonts import draw_text, text_width
from zoo.layers import BicubicUpsampling, PixelShuffle, ResidualBlock
from zoo.progress import progress

METHODS = ("ig", "occlusion", "attention", "lime", "shap")
DEFAULT_METHODS = ("ig", "occlusion", "attention")  # LIME and SHAP cost `samples` model passes: asked for
SAMPLES = 5000  # LIME copies and SHAP coalitions per image (the command line's --samples default)
DRAWS = 10  # random k-patch deletions averaged per image and k
DELETION_KS = (1, 2, 4, 8)  # patches removed in the deletion test (those below the patch count)
PANEL = 168  # the longer side of each panel in OUT.png, pixels
_GRADIENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # function -> traced value and gradient
_VALUES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # function -> traced function
_BLUE, _WHITE, _RED = np.array([33, 102, 172.0]), np.array([247, 247, 247.0]), np.array([178, 24, 43.0])


@dataclass(frozen=True)
class Target:
    """What is explained: the scalar, the input the model reads, and which methods apply."""

    kind: str  # "classifier", "vae" or "super_resolution"
    description: str  # f(x) in words
    channels: int  # image channels the model reads
    size: tuple[int, int] | None  # the fixed (H, W) input size, or None for any size
    function: Callable  # (x float32 (B, H, W, C), class int32 ()) -> f float32 (B,)
    methods: tuple[str, ...]  # the methods that apply
    pixel_budget: int  # input pixels per forward batch


# ----------------------------------------------------------------------------- model kinds

def _has(model: Any, *names: str) -> bool:
    return all(callable(getattr(model, name, None)) for name in names)


def kind_of(model: Any) -> str | None:
    """"classifier", "vae", "super_resolution", or None for a model this module cannot explain."""
    if _has(model, "predict_texts"):
        return None  # a text classifier: zoo.explain.text
    if _has(model, "upscale") and getattr(model, "scale", None) and getattr(model, "generator", None) is not None:
        return "super_resolution"
    if _has(model, "predict_proba") and getattr(model, "image_shape", None) is not None:
        return "classifier"
    if getattr(model, "encoder", None) is not None and getattr(model, "latent_size", None) \
            and getattr(model, "image_shape", None) is not None:
        return "vae"
    return None


def can_explain(model: Any) -> bool:
    """Whether `explain_images` can explain `model` (the hybrid classifier, a VAE, an SR model)."""
    return kind_of(model) is not None


def _classifier_target(model) -> Target:
    def probability(x, label):
        logits = ops.cast(model(x, training=False), "float32")  # (B, K)
        return tf.gather(ops.softmax(logits, axis=-1), label, axis=1)  # (B,)

    height, width, channels = (int(s) for s in model.image_shape)
    return Target("classifier", "the probability of the predicted class (softmax of the logits; the "
                  "class is the one predicted for the image)", channels, (height, width), probability,
                  METHODS, 1 << 16)


def _vae_target(model) -> Target:
    classes = int(getattr(model, "num_classes", 0) or 0) if getattr(model, "conditional", False) else 0

    def rate(x, label):
        if classes:  # every image with every class: (B * K, ...)
            one_hot = tf.tile(tf.eye(classes), [tf.shape(x)[0], 1])
            mean, log_var = model.encoder([tf.repeat(x, classes, axis=0), one_hot], training=False)
        else:
            mean, log_var = model.encoder(x, training=False)  # (B, L) each
        mean, log_var = ops.cast(mean, "float32"), ops.cast(log_var, "float32")
        kl = 0.5 * ops.sum(ops.square(mean) + ops.exp(log_var) - log_var - 1.0, axis=-1)
        return ops.mean(ops.reshape(kl, (-1, classes)), axis=1) if classes else kl

    height, width, channels = (int(s) for s in model.image_shape)
    also = " (the mean over the classes of this class-conditional VAE)" if classes else ""
    return Target("vae", "KL(q(z|x) || N(0, I)) in nats: the information the latent code holds about "
                  f"the image{also}", channels, (height, width), rate, ("ig", "occlusion", "lime", "shap"), 1 << 15)


_POINTWISE = (keras.layers.InputLayer, keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply,
              keras.layers.Average, keras.layers.Maximum, keras.layers.Minimum,
              keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.PReLU, keras.layers.ELU,
              keras.layers.Activation, keras.layers.Rescaling, keras.layers.Dropout, keras.layers.SpatialDropout2D,
              keras.layers.GaussianNoise, keras.layers.Identity, keras.layers.BatchNormalization, PixelShuffle)


def _layer_reach(layer) -> int | None:
    if isinstance(layer, keras.Model):
        return receptive_reach(layer)
    if isinstance(layer, _POINTWISE):  # (batch norm at inference is a per-element affine map)
        return 0
    if isinstance(layer, keras.layers.Concatenate):
        return 0 if layer.axis in (-1, 3) else None  # channels, not pixels
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)):
        if layer.padding != "same" or tuple(layer.strides) != (1, 1):
            return None
        return max(math.ceil((k - 1) * d / 2) for k, d in zip(layer.kernel_size, layer.dilation_rate))
    if isinstance(layer, ResidualBlock):
        return 2 * math.ceil((layer.kernel_size - 1) / 2)
    if isinstance(layer, BicubicUpsampling):
        return 2  # 4 taps: output pixel i reads input pixels i // scale - 2 .. i // scale + 2
    if isinstance(layer, keras.layers.UpSampling2D):
        return 0 if layer.interpolation == "nearest" else None
    return None


def receptive_reach(model) -> int | None:
    """At most how many input pixels, on each side, one output pixel of a stride-1
    image-to-image network reads: the sum of its layers' reaches.

    The sum bounds every path through the network, however the layers are wired (a reach in
    an upsampled layer's pixels is at most as many input pixels). None when some layer's reach
    is unknown (a strided or unpadded convolution, a pooling, a layer this function does not
    know): then nothing may be cropped.

    Example:
    >>> receptive_reach(build_sr_generator(scale=2, filters=4, blocks=1))  # doctest: +SKIP
    8
    """
    total = 0
    for layer in model.layers:
        reach = _layer_reach(layer)
        if reach is None:
            return None
        total += reach
    return total


def _central_window(height, width):
    """`(top, bottom, left, right)` of the central window (half the height and width) of an image."""
    top, left = height // 4, width // 4
    return top, top + tf.maximum(height // 2, 1), left, left + tf.maximum(width // 2, 1)


def sr_input_window(height, width, scale: int, reach: int | None):
    """The input rows and columns `(top, bottom, left, right)` that the central output window
    of a x`scale` super-resolution of an `height` x `width` image depends on: the window's
    input pixels and `reach` more on each side, within the image (the whole image when reach is
    None). `height` and `width` may be Python ints or traced int32 scalars; the bounds are int32
    scalars."""
    if reach is None:
        return 0, height, 0, width
    top, bottom, left, right = _central_window(height * scale, width * scale)
    return (tf.maximum(top // scale - reach, 0), tf.minimum((bottom - 1) // scale + reach + 1, height),
            tf.maximum(left // scale - reach, 0), tf.minimum((right - 1) // scale + reach + 1, width))


def _sr_target(model, crop: bool = True) -> Target:
    scale = int(model.scale)
    reach = receptive_reach(model.generator) if crop else None

    def window_luma(x, label):
        # the generator runs only on the input the window depends on (`sr_input_window`): the
        # window's values are those of the whole image's upscale, and every method's cost shrinks
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        y0, y1, x0, x1 = sr_input_window(height, width, scale, reach)
        y = ops.cast(model.generator(x[:, y0:y1, x0:x1], training=False), "float32")  # (B, s(y1-y0), s(x1-x0), 3)
        top, bottom, left, right = _central_window(height * scale, width * scale)  # in the whole upscale
        window = y[:, top - y0 * scale:bottom - y0 * scale, left - x0 * scale:right - x0 * scale]
        luma = 0.299 * window[..., 0] + 0.587 * window[..., 1] + 0.114 * window[..., 2]
        return ops.mean(luma, axis=(1, 2))

    return Target("super_resolution", "the mean luma (BT.601, [0, 1]) of the central window (half the "
                  f"height and width) of the x{scale} upscaled image", 3, None, window_luma,
                  ("ig", "occlusion", "lime", "shap"), 1 << 13)


def target_of(model: Any) -> Target:
    """The `Target` of a model; UserError for a model this module cannot explain."""
    kind = kind_of(model)
    if kind is None:
        raise UserError(f"{type(model).__name__} is not an image model zoo can explain: pass the hybrid "
                        "image classifier, a VAE or a super-resolution model (text classifiers take texts)")
    return {"classifier": _classifier_target, "vae": _vae_target, "super_resolution": _sr_target}[kind](model)


# ----------------------------------------------------------------------------- attributions

def _batches(count: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, count)) for i in range(0, count, size)]


def _batch_size(target_or_budget: Target | int, image: np.ndarray) -> int:
    budget = target_or_budget.pixel_budget if isinstance(target_or_budget, Target) else target_or_budget
    return max(1, min(64, budget // (image.shape[0] * image.shape[1])))


def value_and_gradient(function: Callable) -> Callable:
    """A traced `(x (B, H, W, C), label) -> (f (B,), df/dx (B, H, W, C))` of a per-image scalar
    (one trace per function, kept while the function lives)."""
    if function not in _GRADIENTS:
        @tf.function(reduce_retracing=True)
        def run(x, label):
            with tf.GradientTape() as tape:
                tape.watch(x)
                values = function(x, label)
                total = tf.reduce_sum(values)  # images are independent: d total / dx_i = df_i / dx_i
            return values, tape.gradient(total, x)

        _GRADIENTS[function] = run
    return _GRADIENTS[function]


def integrated_gradients(function: Callable, image: np.ndarray, steps: int, label: int = 0,
                         batch_size: int = 32, baseline: np.ndarray | None = None) -> tuple[np.ndarray, float, float]:
    """Integrated gradients of `function` at one image, by the trapezoid rule.

    Args:
        function: `(x float32 (B, H, W, C), label int32) -> (B,)`, differentiable in x.
        image: `(H, W, C)` float32.
        steps: intervals of the path from the baseline to the image (`steps + 1` gradients).
        label: passed to `function` (the class of a classifier).
        batch_size: path points per gradient batch.
        baseline: `(H, W, C)`; None is black (zeros).

    Returns:
        `(attributions (H, W, C) float64, f(image), f(baseline))`; completeness:
        `attributions.sum() ~= f(image) - f(baseline)` (exact as steps grow).

    Example:
    >>> total = lambda x, label: ops.sum(x, axis=(1, 2, 3))
    >>> attributions, f_x, f_b = integrated_gradients(total, np.ones((2, 2, 1)), steps=4)  # doctest: +SKIP
    """
    if steps < 1:
        raise UserError(f"--steps must be at least 1, got {steps}")
    image = np.asarray(image, np.float32)
    baseline = np.zeros_like(image) if baseline is None else np.asarray(baseline, np.float32)
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] = 0.5 / steps
    run, total, values = value_and_gradient(function), np.zeros(image.shape, np.float64), np.zeros(steps + 1)
    for part in _batches(steps + 1, batch_size):
        points = baseline + alphas[part, None, None, None] * (image - baseline)  # (b, H, W, C)
        f, grads = run(tf.constant(points), tf.constant(label, tf.int32))
        values[part] = f.numpy()
        total += np.tensordot(weights[part], grads.numpy().astype(np.float64), axes=1)
    return (image - baseline) * total, float(values[-1]), float(values[0])


def _scores(function: Callable, images: np.ndarray, label: int, batch_size: int) -> np.ndarray:
    """f of a stack of images `(N, H, W, C)` -> `(N,)` float64, in batches."""
    traced = _traced(function)
    return np.concatenate([traced(tf.constant(images[part]), tf.constant(label, tf.int32)).numpy()
                           for part in _batches(len(images), batch_size)]).astype(np.float64)


def _traced(function: Callable) -> Callable:
    if function not in _VALUES:
        _VALUES[function] = tf.function(function, reduce_retracing=True)
    return _VALUES[function]


def patch_size(height: int, width: int) -> int:
    """The occlusion and deletion patch side: `max(1, round(min(H, W) / 7))` (4 on 28x28)."""
    return max(1, round(min(height, width) / 7))


def _starts(length: int, patch: int, stride: int) -> list[int]:
    starts = list(range(0, max(length - patch, 0) + 1, stride))
    return starts if starts[-1] + patch >= length else starts + [length - patch]


def occlusion(function: Callable, image: np.ndarray, label: int = 0, patch: int | None = None,
              stride: int | None = None, batch_size: int = 64) -> tuple[np.ndarray, float]:
    """Occlusion map `(H, W)`: the mean drop f(x) - f(x with a black patch) over covering patches.

    Args:
        function, image, label, batch_size: as for `integrated_gradients`.
        patch: the patch side; None: `patch_size(H, W)`.
        stride: None: `max(1, patch // 2)`.

    Returns:
        `(map (H, W) float64, f(image))`.
    """
    height, width = image.shape[:2]
    patch = min(patch or patch_size(height, width), height, width)
    stride = stride or max(1, patch // 2)
    corners = [(y, x) for y in _starts(height, patch, stride) for x in _starts(width, patch, stride)]
    occluded = np.repeat(np.asarray(image, np.float32)[None], len(corners), axis=0)  # (P, H, W, C)
    for i, (y, x) in enumerate(corners):
        occluded[i, y:y + patch, x:x + patch] = 0.0
    f_image = _scores(function, np.asarray(image, np.float32)[None], label, 1)[0]
    drops = f_image - _scores(function, occluded, label, batch_size)
    total, count = np.zeros((height, width)), np.zeros((height, width))
    for drop, (y, x) in zip(drops, corners):
        total[y:y + patch, x:x + patch] += drop
        count[y:y + patch, x:x + patch] += 1
    return total / np.maximum(count, 1), float(f_image)


# ----------------------------------------------------------------------------- deletion test

def patch_grid(height: int, width: int, patch: int) -> list[tuple[slice, slice]]:
    """The non-overlapping `patch` x `patch` cells covering the image (edge cells smaller)."""
    return [(slice(y, min(y + patch, height)), slice(x, min(x + patch, width)))
            for y in range(0, height, patch) for x in range(0, width, patch)]


def rank_patches(attribution: np.ndarray, cells: list[tuple[slice, slice]], rng: np.random.Generator) -> np.ndarray:
    """Patch indices, most attributed first (sum of the `(H, W)` map over each; ties at random)."""
    scores = np.array([attribution[cell].sum() for cell in cells])
    order = rng.permutation(len(cells))
    return order[np.argsort(-scores[order], kind="stable")]


def deletion_test(function: Callable, image: np.ndarray, maps: dict[str, np.ndarray], label: int, seed,
                  ks: Sequence[int] = DELETION_KS, draws: int = DRAWS, batch_size: int = 64) -> dict:
    """Drops of f when the top-k patches of each map, or k random patches, are blacked out.

    Args:
        function, image, label, batch_size: as for `integrated_gradients`.
        maps: `{method: (H, W) attribution}`; larger = more evidence for f.
        seed: seeds the random patches and the tie breaks (an int or a sequence of ints).
        ks: how many patches to remove (those not below the patch count are skipped).
        draws: random k-patch sets per k.

    Returns:
        `{"patch", "patches", "k": [...], "random": [mean drop per k], method: [drop per k]}`.
    """
    height, width = image.shape[:2]
    patch = patch_size(height, width)
    cells = patch_grid(height, width, patch)
    ks = [k for k in ks if k < len(cells)]
    rng = np.random.default_rng(seed)
    orders = {name: rank_patches(m, cells, rng) for name, m in maps.items()}
    chosen = [orders[name][:k] for name in maps for k in ks]
    chosen += [rng.choice(len(cells), k, replace=False) for k in ks for _ in range(draws)]
    removed = np.repeat(np.asarray(image, np.float32)[None], len(chosen), axis=0)
    for i, cell_ids in enumerate(chosen):
        for c in cell_ids:
            removed[i][cells[c]] = 0.0
    f_image = _scores(function, np.asarray(image, np.float32)[None], label, 1)[0]
    drops = f_image - _scores(function, removed, label, batch_size)
    report = {"patch": patch, "patches": len(cells), "k": ks}
    for j, name in enumerate(maps):
        report[name] = drops[j * len(ks):(j + 1) * len(ks)].tolist()
    report["random"] = drops[len(maps) * len(ks):].reshape(len(ks), draws).mean(axis=1).tolist()
    return report


# ----------------------------------------------------------------------------- reading and checks

def read_for(target: Target, path: str | Path, model_name: str = "the model") -> np.ndarray:
    """An image file as float32 `(H, W, C)` in [0, 1] with the model's channels; UserError for a
    missing or unreadable file, or a size the model does not read."""
    from zoo.data.images import read_image

    image = read_image(path, target.channels)  # (H, W, C) uint8
    if target.size is not None and image.shape[:2] != target.size:
        height, width = target.size
        raise UserError(f"image {path} is {image.shape[1]}x{image.shape[0]} pixels but {model_name} reads "
                        f"{width}x{height} images (width x height): resize it to {width}x{height}")
    return image.astype(np.float32) / 255.0


def check_methods(methods: Sequence[str] | None, target: Target) -> list[str]:
    """The methods to run (default: those of `DEFAULT_METHODS` that apply); UserError for an
    unknown or inapplicable one."""
    if not methods:
        return [m for m in target.methods if m in DEFAULT_METHODS]
    chosen = [m.strip().lower() for m in methods if m.strip()]
    wrong = [m for m in chosen if m not in target.methods]
    if wrong or not chosen:
        kind = target.kind.replace("_", "-")
        raise UserError(f"--method {','.join(wrong) or '(none)'} does not apply to this {kind} model: "
                        f"use {', '.join(target.methods)}")
    return list(dict.fromkeys(chosen))


# ----------------------------------------------------------------------------- one image

def coalition_value(target: Target, image: np.ndarray, segments: np.ndarray, hidden: np.ndarray, label: int,
                    batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """`masks (N, superpixels) bool -> f (N,)` of the image with only each mask's superpixels
    shown (the others from `hidden`), composed and scored batch by batch."""
    def value(masks: np.ndarray) -> np.ndarray:
        return np.concatenate([_scores(target.function, superpixels.compose(image, hidden, segments, masks[part]),
                                       label, batch_size) for part in _batches(len(masks), batch_size)])

    return value


def _players_methods(target: Target, image: np.ndarray, methods: list[str], label: int, samples: int,
                     seed: int, batch: int, numbers: dict, maps: dict, how: str = "auto") -> None:
    """LIME and SHAP on the image's superpixels (black where hidden), into `numbers` and `maps`;
    `how`: the segmentation (`superpixels.segment`)."""
    segments, segmentation = superpixels.segment(image, patch_size(*image.shape[:2]), how)
    count = int(segments.max()) + 1
    numbers["players"] = {"segmentation": segmentation, "count": count}
    value = coalition_value(target, image, segments, np.zeros_like(image), label, batch)
    if "lime" in methods:
        lime = superpixels.lime_image(value, count, samples, seed)
        maps["lime"] = superpixels.per_pixel(lime.weights, segments)
        numbers["lime"] = {"weights": lime.weights.tolist(), "intercept": lime.intercept, "score": lime.score,
                           "local_prediction": lime.local_prediction, "samples": samples, "seed": seed}
    if "shap" in methods:
        shap = kernel_shap(value, count, samples, seed)
        maps["shap"] = superpixels.per_pixel(shap.values, segments)
        numbers["shap"] = {"values": shap.values.tolist(), "sum": float(shap.values.sum()),
                           "f_difference": shap.prediction - shap.background,
                           "efficiency_error": shap.efficiency_error, "coalitions": shap.coalitions,
                           "exact": shap.exact, "seed": seed}


def _explain_one(model, target: Target, image: np.ndarray, methods: list[str], steps: int, seed,
                 samples: int = SAMPLES, method_seed: int = 0, segmentation: str = "auto") -> tuple[dict, dict]:
    """`(numbers, maps)` of one image: f, the prediction, IG, occlusion, attention, LIME, SHAP,
    deletion (`seed` seeds the deletion test, `method_seed` LIME's and SHAP's samples,
    `segmentation` their players)."""
    label, numbers, maps = 0, {}, {}
    batch = _batch_size(target, image)
    if target.kind == "classifier":
        probabilities, rows = (np.asarray(a) for a in model.predict_proba(image[None]))
        label = int(np.argmax(probabilities[0]))
        names = list(getattr(model, "class_names", None) or range(len(probabilities[0])))
        numbers["prediction"] = {"label": str(names[label]), "class": label,
                                 "probability": float(probabilities[0, label])}
        if "attention" in methods:
            maps["attention"] = np.repeat(rows[0].astype(np.float64)[:, None], image.shape[1], axis=1)
            top = np.argsort(-rows[0])[:5]
            numbers["attention"] = {"rows": [[int(r), float(rows[0, r])] for r in top]}
    if "ig" in methods:
        attribution, f_x, f_b = integrated_gradients(target.function, image, steps, label, batch)
        maps["ig"] = attribution.sum(axis=-1)
        numbers["ig"] = {"sum": float(attribution.sum()), "f_difference": f_x - f_b,
                         "completeness_error": abs(float(attribution.sum()) - (f_x - f_b))}
    if "occlusion" in methods:
        maps["occlusion"], f_x = occlusion(target.function, image, label, batch_size=batch)
        patch = min(patch_size(*image.shape[:2]), *image.shape[:2])
        numbers["occlusion"] = {"patch": patch, "stride": max(1, patch // 2),
                                "max_drop": float(maps["occlusion"].max())}
    if "lime" in methods or "shap" in methods:
        _players_methods(target, image, methods, label, samples, method_seed, batch, numbers, maps, segmentation)
    numbers["f"] = float(_scores(target.function, image[None], label, 1)[0])
    numbers["f_baseline"] = float(_scores(target.function, np.zeros_like(image)[None], label, 1)[0])
    maps = {method: maps[method] for method in methods}  # in the order asked for
    numbers["deletion"] = deletion_test(target.function, image, maps, label, seed, batch_size=batch)
    return numbers, maps


# ----------------------------------------------------------------------------- pictures

def diverging(values: np.ndarray) -> np.ndarray:
    """`(H, W)` signed values -> uint8 `(H, W, 3)`: blue (negative), white (0), red (positive),
    symmetric around 0 (the largest |value| is full colour)."""
    peak = float(np.max(np.abs(values))) or 1.0
    t = np.clip(values / peak, -1.0, 1.0)[..., None]
    colour = np.where(t >= 0, _WHITE + t * (_RED - _WHITE), _WHITE - t * (_BLUE - _WHITE))
    return np.round(colour).astype(np.uint8)


def sequential(values: np.ndarray) -> np.ndarray:
    """`(H, W)` non-negative values -> uint8 `(H, W, 3)`, white (0) to dark orange (the maximum)."""
    t = np.clip(values / (float(np.max(values)) or 1.0), 0.0, 1.0)[..., None]
    return np.round(_WHITE + t * (np.array([166, 54, 3.0]) - _WHITE)).astype(np.uint8)


def _resized(picture: np.ndarray, height: int, width: int) -> np.ndarray:
    mode = Image.Resampling.NEAREST if height >= picture.shape[0] else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(picture).resize((width, height), mode))


def _display_size(height: int, width: int) -> tuple[int, int]:
    scale = PANEL / max(height, width)
    if scale >= 1:
        scale = math.floor(scale)  # whole pixels for small images
    return max(1, round(height * scale)), max(1, round(width * scale))


def captioned(picture: np.ndarray, lines: Sequence[str], width: int | None = None) -> Image.Image:
    """A uint8 `(h, w, 3)` picture under up to three caption lines, on white."""
    width = max(width or 0, picture.shape[1])
    canvas = Image.new("RGB", (width + 8, picture.shape[0] + 14 * len(lines) + 10), "white")
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw_text(draw, (4, 3 + 14 * i), line, (20, 20, 20))
    canvas.paste(Image.fromarray(picture), (4, 14 * len(lines) + 6))
    return canvas


def _panels(image: np.ndarray, numbers: dict, maps: dict, path: str) -> list[Image.Image]:
    height, width = _display_size(*image.shape[:2])
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    shown = _resized(np.round(rgb * 255.0).astype(np.uint8), height, width)
    prediction = numbers.get("prediction")
    first = f"{prediction['label']} ({prediction['probability']:.3f})" if prediction else f"f = {numbers['f']:.4g}"
    panels = [captioned(shown, [Path(path).name[:28], first, f"f(black) = {numbers['f_baseline']:.4g}"])]
    if "attention" in maps:
        bar = sequential(maps["attention"][:, :1])  # (H, 1, 3)
        panels.append(captioned(_resized(bar, height, 20), ["rows", "", ""], 34))
    shade = 1.0 - 0.3 * shown.mean(axis=-1, keepdims=True) / 255.0  # the input, faintly, beneath a map

    def over(values: np.ndarray) -> np.ndarray:
        return np.round(_resized(diverging(values), height, width) * shade).astype(np.uint8)

    if "ig" in maps:
        ig = numbers["ig"]
        panels.append(captioned(over(maps["ig"]),
                                ["integrated gradients", f"sum {ig['sum']:.4g} (error {ig['completeness_error']:.2g})",
                                 f"red +, blue -; max {np.abs(maps['ig']).max():.2g}"]))
    if "occlusion" in maps:
        occ = numbers["occlusion"]
        panels.append(captioned(over(maps["occlusion"]),
                                [f"occlusion {occ['patch']}x{occ['patch']}/{occ['stride']}",
                                 "drop of f when blacked out", f"max {np.abs(maps['occlusion']).max():.2g}"]))
    count = numbers.get("players", {}).get("count")
    if "lime" in maps:
        panels.append(captioned(over(maps["lime"]), [f"LIME, {count} superpixels",
                                                     f"R^2 {numbers['lime']['score']:.3f}, "
                                                     f"{numbers['lime']['samples']} copies",
                                                     f"max {np.abs(maps['lime']).max():.2g} per pixel"]))
    if "shap" in maps:
        shap = numbers["shap"]
        panels.append(captioned(over(maps["shap"]), [f"SHAP, {count} superpixels" + (", exact" if shap["exact"] else ""),
                                                     f"sum {shap['sum']:.4g} (error {shap['efficiency_error']:.2g})",
                                                     f"{shap['coalitions']} coalitions"]))
    return panels


def wrap(text: str, width: int, size: int = 12) -> list[str]:
    """`text` broken into lines at most `width` pixels wide at font `size` (`zoo.fonts`)."""
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and text_width(candidate, size) > width:
            lines.append(line)
            candidate = word
        line = candidate
    return lines + [line] if line else lines


def _figure(rows: list[list[Image.Image]], title: str) -> Image.Image:
    """Rows of captioned panels under a title (wrapped to the width), on white."""
    widths = [sum(p.width for p in row) for row in rows]
    heights = [max(p.height for p in row) for row in rows]
    width = max(widths + [400])
    lines = wrap(title, width - 8)
    canvas = Image.new("RGB", (width, sum(heights) + 16 * len(lines) + 8), "white")
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw_text(draw, (4, 4 + 16 * i), line, (0, 0, 120), 12)
    top = 16 * len(lines) + 8
    for row, height in zip(rows, heights):
        left = 0
        for panel in row:
            canvas.paste(panel, (left, top))
            left += panel.width
        top += height
    return canvas


def _html_table(table: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in table[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def html_page(title: str, png: bytes, intro: str, *tables: list[list[str]]) -> bytes:
    """A self-contained page (`zoo.explain.render.html_page`): the intro, tables of numbers
    (first row: the header), the figure as a base64 PNG."""
    return render.html_page(title, f"<p>{html.escape(intro)}</p>{''.join(map(_html_table, tables))}", png)


def _tables(reports: list[dict]) -> tuple[list[list[str]], list[list[str]]]:
    """The per-image numbers, and the deletion test (one row per image and method)."""
    rows = [["image", "prediction", "f(x)", "f(black)", "IG sum", "IG completeness error", "superpixels",
             "LIME R^2", "SHAP sum", "SHAP efficiency error"]]
    deletion = [["image", "method", "patches removed k", "drop of f, top-k patches", "drop of f, k random patches"]]
    for r in reports:
        p, ig, d, lime, shap = r.get("prediction"), r.get("ig"), r["deletion"], r.get("lime"), r.get("shap")
        rows.append([r["path"], f"{p['label']} ({p['probability']:.3f})" if p else "-", f"{r['f']:.5g}",
                     f"{r['f_baseline']:.5g}", f"{ig['sum']:.5g}" if ig else "-",
                     f"{ig['completeness_error']:.2g}" if ig else "-",
                     str(r["players"]["count"]) if "players" in r else "-", f"{lime['score']:.3f}" if lime else "-",
                     f"{shap['sum']:.5g}" if shap else "-", f"{shap['efficiency_error']:.2g}" if shap else "-"])
        for name in [n for n in d if n not in ("patch", "patches", "k", "random")]:
            deletion.append([Path(r["path"]).name, name, ", ".join(map(str, d["k"])),
                             ", ".join(f"{v:.3g}" for v in d[name]), ", ".join(f"{v:.3g}" for v in d["random"])])
    return rows, deletion


# ----------------------------------------------------------------------------- entry point

def explain_images(model: Any, paths: list[str], out: Path, seed: int = 0, steps: int = 64,
                   methods: list[str] | None = None, samples: int = SAMPLES, segmentation: str = "auto") -> dict:
    """Explain an image model's output for each image file; writes OUT.png and OUT.html.

    Args:
        model: the hybrid classifier, a VAE or a super-resolution model (see the module docstring).
        paths: image files (converted to the model's channels; fixed-size models need their size).
        out: the output path stem: OUT.html and OUT.png are written (a .html/.png suffix is dropped).
        seed: seeds the random patches of the deletion test, and LIME's and SHAP's samples (image
            i uses `seed + i`).
        steps: integrated-gradients intervals (the trapezoid rule uses steps + 1 gradients).
        methods: any of "ig", "occlusion", "attention" (the hybrid classifier only), "lime", "shap";
            None: those of `DEFAULT_METHODS` that apply.
        samples: LIME's copies and SHAP's coalitions per image (at least 2).
        segmentation: LIME's and SHAP's players: "auto", "quickshift" or "grid"
            (`zoo.explain.superpixels.segment`).

    Returns:
        A JSON-able report: `kind` "image", `model_kind` (classifier, vae, super_resolution),
        what f is, the settings, one entry per image (f, f(black), prediction, IG sum and
        completeness error, occlusion settings, top rows, deletion test) and the files written.

    Raises:
        UserError: a model kind it cannot explain, no images, a missing, unreadable or wrongly
            sized image, an unknown method, steps < 1, a missing output folder.
    """
    target = target_of(model)
    chosen = check_methods(methods, target)
    if steps < 1:
        raise UserError(f"--steps must be at least 1, got {steps}")
    if samples < 2 and ("lime" in chosen or "shap" in chosen):
        raise UserError(f"--samples must be at least 2 for LIME and SHAP, got {samples}")
    if segmentation not in superpixels.SEGMENTATIONS:
        raise UserError(f"--segmentation must be one of {', '.join(superpixels.SEGMENTATIONS)}, got {segmentation!r}")
    if not paths:
        raise UserError("no image to explain: pass image files")
    html_path, png_path = render.output_paths(out)
    refuse_overwriting([html_path, png_path], paths)
    images = [read_for(target, path, type(model).__name__) for path in paths]  # all read before any work
    reports, rows = [], []
    for i in progress(range(len(paths)), "explain", lambda i: Path(paths[i]).name):
        numbers, maps = _explain_one(model, target, images[i], chosen, steps, [seed, i], samples, seed + i,
                                     segmentation)
        reports.append({"path": str(paths[i]), "size": list(images[i].shape[:2]), **numbers})
        rows.append(_panels(images[i], numbers, maps, str(paths[i])))
    if "attention" in chosen and _has(model, "som_picture"):  # the hybrid: what its rows are matched to
        rows.append([captioned(model.som_picture(), ["the SOM's map of rows: each unit's prototype row",
                                                     "in its grid place (rows are matched to these)"])])
    title = f"{type(model).__name__} ({target.kind}): f = {target.description}"
    png = render.png_bytes(np.asarray(_figure(rows, title)))
    intro = (f"f = {target.description}. Integrated gradients: black baseline, {steps} trapezoid steps. "
             "Occlusion: black patches. LIME and SHAP: superpixels blacked out, "
             f"{samples} copies / coalitions, image i seeded {seed} + i. Deletion test: f drop when the top-k "
             f"patches of a map or k random patches ({DRAWS} draws, seed {seed}) are blacked out.")
    page = html_page(f"{type(model).__name__}: explanations", png, intro, *_tables(reports))
    render.write_files({png_path: png, html_path: page})
    return {"model": type(model).__name__, "kind": "image", "model_kind": target.kind, "target": target.description,
            "methods": chosen, "steps": steps, "seed": seed, "baseline": "black (0)",
            **({"samples": samples} if "lime" in chosen or "shap" in chosen else {}),
            "images": reports, "outputs": {"html": str(html_path), "png": str(png_path)}}
