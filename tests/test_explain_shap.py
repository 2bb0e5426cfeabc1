"""zoo.explain.shap (Kernel SHAP) against the `shap` package and exact Shapley values, SHAP on an
image model (same players, background and seed as shap.KernelExplainer) and on a known linear text
model. SHAP on a Keras text classifier and through the command line: tests/test_explain_text.py and
tests/test_explain_image.py."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest

from zoo.explain.shap import kernel_shap

EXACT = 1e-9  # numpy models: the same coalitions and the same least squares, so rounding only
MODEL = 1e-5  # Keras models: shap scores the coalitions in other batches (float32 rounding differs)


def _game(players: int, seed: int):
    """A nonlinear game on 0/1 masks (interactions of every pair), as a function of float masks."""
    rng = np.random.default_rng(seed)
    linear, pairs = rng.normal(size=players), rng.normal(size=(players, players))
    return lambda masks: np.tanh(masks @ linear + 0.3 * np.einsum("ni,ij,nj->n", masks, pairs, masks))


def _shap_package(f, players: int, samples: int, seed: int) -> np.ndarray:
    """shap.KernelExplainer's values of x = all players against the background = no player
    (shap draws its coalitions from numpy's global generator: seeded here)."""
    import shap  # the reference (the `test` extra installs it)

    np.random.seed(seed)
    explainer = shap.KernelExplainer(f, np.zeros((1, players)))
    return np.asarray(explainer.shap_values(np.ones((1, players)), nsamples=samples, l1_reg=False,
                                            silent=True)).reshape(-1)


def _shapley(f, players: int) -> np.ndarray:
    """The Shapley values by their definition: weighted marginal contributions over all coalitions."""
    values = np.zeros(players)
    for i in range(players):
        others = [j for j in range(players) if j != i]
        for size in range(players):
            for members in itertools.combinations(others, size):
                mask = np.zeros((2, players))
                mask[:, list(members)] = 1
                mask[1, i] = 1
                low, high = f(mask)
                values[i] += math.factorial(size) * math.factorial(players - size - 1) / math.factorial(players) \
                    * (high - low)
    return values


@pytest.mark.parametrize("players, samples, seed", [(8, 300, 0), (13, 400, 3)])  # exact; sampled
def test_kernel_shap_equals_the_shap_package(players, samples, seed):
    f = _game(players, seed)
    ours = kernel_shap(lambda masks: f(masks.astype(float)), players, samples, seed)
    np.testing.assert_allclose(ours.values, _shap_package(f, players, samples, seed), atol=EXACT, rtol=0)
    assert ours.exact == (samples >= 2 ** players - 2)
    assert ours.coalitions == min(samples, 2 ** players - 2)
    assert ours.efficiency_error < 1e-12
    assert ours.prediction == pytest.approx(f(np.ones((1, players)))[0]) and ours.background == pytest.approx(f(np.zeros((1, players)))[0])


def test_exact_kernel_shap_is_the_shapley_value_and_sampling_is_seeded():
    f = _game(7, 1)
    np.testing.assert_allclose(kernel_shap(lambda m: f(m.astype(float)), 7, 126).values, _shapley(f, 7), atol=EXACT)
    g = _game(12, 2)
    sampled = [kernel_shap(lambda m: g(m.astype(float)), 12, 200, seed).values for seed in (5, 5, 6)]
    np.testing.assert_array_equal(sampled[0], sampled[1])
    assert not np.array_equal(sampled[0], sampled[2])
    linear = np.arange(1.0, 31.0)  # 30 players, 100 coalitions: a linear game is recovered anyway
    np.testing.assert_allclose(kernel_shap(lambda m: m @ linear, 30, 100).values, linear, atol=1e-9)


def test_image_shap_equals_the_shap_package_on_a_keras_image_model():
    """Players: quickshift superpixels of a 48x48 picture of coloured blocks (9), hidden in black;
    the model: a tiny super-resolution generator (the central window's luma)."""
    from zoo.explain import superpixels
    from zoo.explain.image import _scores, coalition_value, target_of
    from zoo.models import SRGAN, build_sr_discriminator, build_sr_generator

    import keras

    keras.utils.set_random_seed(0)
    model = SRGAN(build_sr_generator(2, 4, 1), build_sr_discriminator(4, 1, 4), scale=2)
    colors = np.random.default_rng(1).integers(0, 2, (3, 3, 3)).astype(np.float32)
    image = np.kron(colors, np.ones((16, 16, 1), np.float32))
    segments, what = superpixels.segment(image, 7)
    assert segments.max() + 1 == 9 and what.startswith("quickshift")
    target = target_of(model)
    value = coalition_value(target, image, segments, np.zeros_like(image), 0, 16)
    ours = kernel_shap(value, 9, 600, seed=2)
    assert ours.exact and ours.coalitions == 510
    reference = _shap_package(lambda masks: value(masks.astype(bool)), 9, 600, 2)
    np.testing.assert_allclose(ours.values, reference, atol=MODEL, rtol=0)
    f_x, f_black = _scores(target.function, np.stack([image, np.zeros_like(image)]), 0, 2)
    assert ours.values.sum() == pytest.approx(f_x - f_black, abs=1e-6)  # efficiency against f(black)
    pixels = superpixels.per_pixel(ours.values, segments)
    assert pixels.sum() == pytest.approx(ours.values.sum())


def test_text_shap_of_a_known_linear_model_is_its_weights():
    """Sampled (17 words, 300 coalitions): a model linear in the words present gets its weights back."""
    from zoo.explain.text import shap_text

    weights = {"oil": 0.2, "stocks": 0.1, "cup": -0.25, "bank": 0.15}
    words = re.findall(r"\w+", "oil and stocks fall as the bank sees a cup match and oil again today with more")

    def classify(texts):
        p = np.array([0.5 + sum(weights.get(w, 0.0) for w in set(t.split())) for t in texts])
        return np.stack([1 - p, p], 1)

    vocabulary, result = shap_text(words, classify, 1, samples=300, seed=0)
    assert not result.exact and len(vocabulary) == 15
    np.testing.assert_allclose(result.values, [weights.get(w, 0.0) for w in vocabulary], atol=1e-9)
