"""Why a text classifier decided: attention weights, LIME, integrated gradients, and the deletion
test that measures how faithful each explanation is.

Every method explains the model's predicted class of one text with a number per token the model
reads (`model.tokens(texts)`: standardized, at most `sequence_length` tokens; position t of the
attention belongs to token t). "Word" below means such a token: a word in English, a character
in Chinese or Japanese (`zoo.layers.TextTokenizer`); a text re-joined from its tokens with
spaces reads as the same tokens, so removing words works in any language:

- `attention`: the model's own attention-pooling weights, as `predict_proba` returns them (they
  sum to 1 over the words). They say where the model looked, not what the word did.
- `lime`: LIME (Ribeiro et al. 2016, https://arxiv.org/abs/1602.04938), model-agnostic. The
  features are the distinct words; each perturbed copy removes a random number (uniform in
  1..n) of them, every occurrence, and the text is re-joined from the kept words; the copies
  are scored in batches by `predict_proba`; a weighted ridge regression (alpha 1) of the
  predicted class's probability on the word-present indicators is the local surrogate. The
  defaults are those of the `lime` package's `LimeTextExplainer` (0.2.0.1), and with the same
  seed the numbers equal the package's (tests/test_explain_text.py): cosine distance of the
  indicator vector to the all-ones one, times 100; kernel `sqrt(exp(-d^2 / 25^2))` (width 25);
  feature selection "auto": at most 10 words, by forward selection when that limit is 6 or
  less, else the 10 largest `|ridge(alpha 0.01) weight|` words; words not selected weigh 0;
  perturbations drawn by `numpy.random.RandomState(seed)` in the package's order; 5000 copies.
  (On 2 CPU cores an AG News text takes about 0.7 s with the default LSTM: tools/bench_explain.py.)
- `ig`: integrated gradients (Sundararajan et al. 2017, https://arxiv.org/abs/1703.01365) of
  the predicted class's probability with respect to the word embeddings (`model.embed`, then
  `model.classify_embeddings`), from an all-zero embedding baseline (the padding mask kept, so
  the baseline has the same words, each with no meaning), along the straight path with the
  trapezoid rule on `steps` intervals; a word's attribution is the sum over its embedding
  dimensions. They should sum to f(x) - f(baseline): the gap is reported as the completeness
  error.
- `shap`: Kernel SHAP (Lundberg & Lee 2017, https://arxiv.org/abs/1705.07874; `zoo.explain.shap`)
  with LIME's players, the distinct words: a coalition keeps its words (every occurrence) and
  removes the others, so the background is the text with every word removed (the empty text).
  Exact Shapley values when `samples` >= 2^n - 2, else `samples` coalitions drawn as the `shap`
  package draws them (seeded); the values sum to f(x) - f(empty text), and the gap (float
  rounding) is reported as the efficiency error. Asked for with `methods`, not run by default.

The deletion test (`deletion_test`): removing the k words an explanation ranks highest should
lower the predicted class's probability more than removing k random words.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.errors import UserError

METHODS = ("attention", "lime", "ig", "shap")
DEFAULT_METHODS = ("attention", "lime", "ig")  # SHAP costs as much as LIME again: asked for
KERNEL_WIDTH = 25.0  # lime.lime_text.LimeTextExplainer(kernel_width=25)
NUM_FEATURES = 10  # LimeTextExplainer.explain_instance(num_features=10)
SAMPLES = 5000  # perturbed copies per text (LimeTextExplainer.explain_instance(num_samples=5000))
STEPS = 50  # integrated-gradients path intervals


def has_attention(model: Any) -> bool:
    """Whether `model` returns attention weights over the words it reads."""
    return callable(getattr(model, "word_attention", None))


def available_methods(model: Any) -> list[str]:
    """The explainers that apply to `model`, in the order of `METHODS`."""
    can = {"attention": has_attention(model),
           "lime": callable(getattr(model, "predict_proba", None)),
           "ig": all(callable(getattr(model, n, None)) for n in ("embed", "classify_embeddings")),
           "shap": callable(getattr(model, "predict_proba", None))}
    return [name for name in METHODS if can[name]]


def check_methods(model: Any, methods: Sequence[str] | None) -> list[str]:
    """`methods` (None: the available ones of `DEFAULT_METHODS`), checked against what `model` supports.

    Raises:
        UserError: naming an unknown method or one this model cannot do.
    """
    available = available_methods(model)
    if methods is None:
        return [name for name in available if name in DEFAULT_METHODS]
    for name in methods:
        if name not in METHODS:
            raise UserError(f"unknown --method {name!r} for a text classifier: choose from "
                            f"{', '.join(available)}")
        if name not in available:
            raise UserError(f"--method {name} does not apply to {type(model).__name__}: choose from "
                            f"{', '.join(available)}")
    return list(dict.fromkeys(methods))


# ----------------------------------------------------------------------------- LIME

@dataclass(frozen=True)
class LimeResult:
    """A LIME explanation of one text for one class."""

    words: list[str]  # the features: distinct words in order of first appearance
    weights: np.ndarray  # (n,) float64 surrogate weight per feature word; 0 where not selected
    selected: list[int]  # the feature indices the surrogate uses, in selection order
    intercept: float
    score: float  # weighted R^2 of the surrogate on the perturbed copies (the package's `score`)
    local_prediction: float  # the surrogate's value on the unperturbed text


def remove_words(words: Sequence[str], removed: Iterable[str]) -> str:
    """The text re-joined from `words` without every occurrence of the `removed` words."""
    gone = set(removed)
    return " ".join(w for w in words if w not in gone)


def _perturbations(words: Sequence[str], vocabulary: list[str], samples: int,
                   rng: np.random.RandomState) -> tuple[np.ndarray, list[str]]:
    """`(indicators (samples, n) float64, texts)`: row 0 the text itself, then copies each
    without a random number (1..n) of its distinct words, drawn as the lime package does."""
    n = len(vocabulary)
    sizes = rng.randint(1, n + 1, samples - 1)
    data, texts = np.ones((samples, n)), [" ".join(words)]
    for i, size in enumerate(sizes, start=1):
        inactive = rng.choice(n, size, replace=False)
        data[i, inactive] = 0
        texts.append(remove_words(words, [vocabulary[j] for j in inactive]))
    return data, texts


def _cosine_distance(data: np.ndarray) -> np.ndarray:
    """`(samples,)` cosine distance of each row to row 0 (a zero row is at distance 1)."""
    norms = np.linalg.norm(data, axis=1)
    similarity = data @ data[0] / np.where(norms == 0, 1.0, norms) / norms[0]
    return np.clip(1.0 - similarity, 0.0, 2.0)


def weighted_ridge(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """`(coefficients (d,), intercept)` minimising `sum w (y - x b - c)^2 + alpha |b|^2` (the
    intercept is not penalised; scikit-learn's `Ridge(alpha).fit(x, y, sample_weight=w)`)."""
    x_mean, y_mean = np.average(x, axis=0, weights=w), np.average(y, weights=w)
    root = np.sqrt(w)[:, None]
    xc, yc = (x - x_mean) * root, (y - y_mean) * root[:, 0]
    if alpha > 0:
        coef = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    else:
        coef = np.linalg.lstsq(xc, yc, rcond=None)[0]
    return coef, float(y_mean - x_mean @ coef)


def weighted_r2(x: np.ndarray, y: np.ndarray, w: np.ndarray, coef: np.ndarray, intercept: float) -> float:
    """Weighted coefficient of determination of `x @ coef + intercept` (1 for a perfect fit)."""
    residual = np.sum(w * (y - x @ coef - intercept) ** 2)
    total = np.sum(w * (y - np.average(y, weights=w)) ** 2)
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return float(1.0 - residual / total)


def _forward_selection(data: np.ndarray, y: np.ndarray, w: np.ndarray, count: int) -> list[int]:
    """Greedily add the feature whose unpenalised fit scores the best weighted R^2."""
    used: list[int] = []
    for _ in range(min(count, data.shape[1])):
        best, best_score = 0, -1e8
        for feature in (f for f in range(data.shape[1]) if f not in used):
            columns = data[:, used + [feature]]
            score = weighted_r2(columns, y, w, *weighted_ridge(columns, y, w, 0.0))
            if score > best_score:
                best, best_score = feature, score
        used.append(best)
    return used


def select_features(data: np.ndarray, y: np.ndarray, w: np.ndarray, count: int,
                    method: str = "auto") -> list[int]:
    """The lime package's feature selection: "auto" is forward selection for `count` <= 6, else
    "highest_weights" (the `count` largest `|weight|` of a ridge fit with alpha 0.01 on all
    words); "none" keeps every word."""
    if method == "auto":
        method = "forward_selection" if count <= 6 else "highest_weights"
    if method == "none":
        return list(range(data.shape[1]))
    if method == "forward_selection":
        return _forward_selection(data, y, w, count)
    if method == "highest_weights":
        coef, _ = weighted_ridge(data, y, w, 0.01)
        return np.argsort(-np.abs(coef * data[0]), kind="stable")[:count].tolist()
    raise ValueError(f"unknown feature selection {method!r}: auto, forward_selection, highest_weights, none")


def lime_text(words: Sequence[str], classify: Callable[[list[str]], np.ndarray], label: int,
              samples: int = SAMPLES, seed: int = 0, num_features: int = NUM_FEATURES,
              kernel_width: float = KERNEL_WIDTH, feature_selection: str = "auto") -> LimeResult:
    """LIME for one text: perturb by removing words, score, fit the weighted linear surrogate.

    Args:
        words: the words the model reads, in order (repeats allowed: a feature is a distinct word).
        classify: `list of N texts -> (N, K) probabilities`, called once on all `samples` copies.
        label: the class whose probability is explained.
        samples: perturbed copies, the text itself included (at least 2).
        seed: seeds `numpy.random.RandomState`, which draws every perturbation.
        num_features: at most this many words get a nonzero weight.
        kernel_width: width of the kernel `sqrt(exp(-d^2 / width^2))` on 100 x cosine distance.
        feature_selection: "auto", "forward_selection", "highest_weights" or "none".
    """
    vocabulary = list(dict.fromkeys(words))
    if not vocabulary or samples < 2:
        raise ValueError(f"LIME needs a text with words and samples >= 2, got {len(vocabulary)} words, "
                         f"{samples} samples")
    data, texts = _perturbations(words, vocabulary, samples, np.random.RandomState(seed))
    y = np.asarray(classify(texts), np.float64)[:, label]  # (samples,)
    return LimeResult(vocabulary, *lime_fit(data, y, _cosine_distance(data) * 100, kernel_width, num_features,
                                            feature_selection))


def lime_fit(data: np.ndarray, y: np.ndarray, distances: np.ndarray, kernel_width: float, num_features: int,
             feature_selection: str = "auto") -> tuple[np.ndarray, list[int], float, float, float]:
    """The lime package's surrogate (`LimeBase.explain_instance_with_data`), for texts and images.

    Args:
        data: `(samples, n)` 0/1 feature-present indicators; row 0 the unperturbed input.
        y: `(samples,)` the explained output of each perturbed copy.
        distances: `(samples,)` distance of each copy to the input (the kernel's argument).
        kernel_width: the kernel `sqrt(exp(-d^2 / width^2))`.
        num_features, feature_selection: as `select_features`.

    Returns:
        `(weights (n,) with 0 where not selected, selected features, intercept, weighted R^2,
        the surrogate's value on row 0)`.
    """
    kernel = np.sqrt(np.exp(-(distances ** 2) / kernel_width ** 2))
    used = select_features(data, y, kernel, num_features, feature_selection)
    coef, intercept = weighted_ridge(data[:, used], y, kernel, 1.0)
    weights = np.zeros(data.shape[1])
    weights[used] = coef
    return (weights, list(used), intercept, weighted_r2(data[:, used], y, kernel, coef, intercept),
            float(intercept + data[0, used] @ coef))


def shap_text(words: Sequence[str], classify: Callable[[list[str]], np.ndarray], label: int,
              samples: int = SAMPLES, seed: int = 0) -> tuple[list[str], Any]:
    """Kernel SHAP of one text: `(distinct words, zoo.explain.shap.ShapResult)`, one value per word.

    Args:
        words, classify, label: as for `lime_text` (`classify` is called once, on every coalition).
        samples: coalitions besides the whole and the empty text (exact values when >= 2^n - 2).
        seed: seeds the sampled coalitions.
    """
    from zoo.explain.shap import kernel_shap

    vocabulary = list(dict.fromkeys(words))
    if not vocabulary:
        raise ValueError("SHAP needs a text with words")

    def value(masks: np.ndarray) -> np.ndarray:
        texts = [remove_words(words, [w for w, keep in zip(vocabulary, mask) if not keep]) for mask in masks]
        return np.asarray(classify(texts), np.float64)[:, label]

    return vocabulary, kernel_shap(value, len(vocabulary), samples, seed)


# ----------------------------------------------------------------------------- integrated gradients

_GRADIENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> traced function


def _gradient_function(model: Any):
    """A `tf.function (path (R, T, E), mask (R, T), onehot (R, K)) -> (probabilities (R,),
    gradients (R, T, E))` of the chosen class's probability, traced once per model."""
    import tensorflow as tf

    if model not in _GRADIENTS:
        reference = weakref.ref(model)  # the cache must not keep the model alive

        @tf.function(reduce_retracing=True)
        def gradients(path, mask, onehot):
            with tf.GradientTape() as tape:
                tape.watch(path)
                logits, _ = reference().classify_embeddings(path, mask)  # (R, K)
                chosen = tf.reduce_sum(tf.nn.softmax(tf.cast(logits, tf.float32)) * onehot, -1)  # (R,)
            return chosen, tape.gradient(chosen, path)

        _GRADIENTS[model] = gradients
    return _GRADIENTS[model]


@dataclass(frozen=True)
class IntegratedGradients:
    """Integrated gradients of one text."""

    attributions: np.ndarray  # (T,) float64 per word position (padding gets ~0)
    prediction: float  # f(x): the class probability of the text
    baseline: float  # f(baseline): the class probability with all-zero embeddings
    completeness_error: float  # |sum(attributions) - (f(x) - f(baseline))|


def integrated_gradients(model: Any, texts: Sequence[str], labels: Sequence[int],
                         steps: int = STEPS) -> list[IntegratedGradients]:
    """Integrated gradients of each text's `labels[i]` probability, per word position.

    Args:
        model: has `embed(texts) -> (x (B, T, E), mask (B, T))` and
            `classify_embeddings(x, mask) -> (logits (B, K), attention)`.
        texts: raw texts.
        labels: the class explained for each text.
        steps: intervals of the trapezoid rule on the path from the zero baseline to x.
    """
    import tensorflow as tf

    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)  # (S+1,)
    trapezoid = np.full(steps + 1, 1.0 / steps)
    trapezoid[[0, -1]] /= 2
    function, results = _gradient_function(model), []
    for text, label in zip(texts, labels):
        x, mask = model.embed(tf.constant([text], tf.string))  # (1, T, E), (1, T)
        path = tf.cast(alphas[:, None, None], x.dtype) * x  # (S+1, T, E)
        onehot = tf.one_hot([int(label)] * (steps + 1), model.num_classes)  # (S+1, K)
        chosen, grads = function(path, tf.repeat(mask, steps + 1, axis=0), onehot)
        chosen, grads = chosen.numpy().astype(np.float64), grads.numpy().astype(np.float64)
        average = np.tensordot(trapezoid, grads, axes=1)  # (T, E)
        attributions = (x[0].numpy().astype(np.float64) * average).sum(-1)  # (T,)
        gap = abs(attributions.sum() - (chosen[-1] - chosen[0]))
        results.append(IntegratedGradients(attributions, float(chosen[-1]), float(chosen[0]), float(gap)))
    return results


# ----------------------------------------------------------------------------- deletion test

def word_totals(words: Sequence[str], scores: Sequence[float]) -> dict[str, float]:
    """Each distinct word's summed score over its positions, in order of first appearance."""
    totals: dict[str, float] = {}
    for word, score in zip(words, scores):
        totals[word] = totals.get(word, 0.0) + float(score)
    return totals


def word_ranking(words: Sequence[str], scores: Sequence[float]) -> list[str]:
    """Distinct words from the highest summed score (over a word's positions) to the lowest;
    ties keep the order of first appearance."""
    totals = word_totals(words, scores)
    return sorted(totals, key=lambda w: -totals[w])


def deletion_test(model: Any, words: Sequence[Sequence[str]], rankings: Sequence[Sequence[str]],
                  ks: Sequence[int] = (1, 3, 5), seed: int = 0, draws: int = 10) -> dict[int, dict[str, Any]]:
    """Per k: the drop of each text's predicted-class probability when its top-k ranked words
    are removed, and the mean drop over `draws` removals of k random distinct words.

    Args:
        model: has `predict_proba(texts) -> (probabilities (N, K), ...)`.
        words: the words each text is read as (`model.tokens`).
        rankings: each text's distinct words, most important first (`word_ranking`).
        ks: how many words to remove (at most the text's distinct words).
        seed: the random removals depend only on it, the texts and `ks`: every explainer is
            compared with the same random words.
        draws: random removals per text and k.

    Returns:
        `{k: {"top": (N,) drops, "random": (N,) mean drops}}`, drops as float64 arrays.
    """
    rng, texts = np.random.default_rng(seed), []
    for text_words, order in zip(words, rankings):
        distinct = list(dict.fromkeys(text_words))  # random words: drawn independently of the ranking
        texts.append(" ".join(text_words))
        for k in ks:
            count = min(k, len(distinct))
            texts.append(remove_words(text_words, order[:count]))
            texts += [remove_words(text_words, [distinct[j] for j in rng.choice(len(distinct), count, replace=False)])
                      for _ in range(draws)]
    probabilities = np.asarray(model.predict_proba(texts)[0], np.float64)
    per_text = 1 + len(ks) * (1 + draws)
    result = {k: {"top": np.zeros(len(words)), "random": np.zeros(len(words))} for k in ks}
    for i in range(len(words)):
        block = probabilities[i * per_text:(i + 1) * per_text]
        label = int(block[0].argmax())
        for j, k in enumerate(ks):
            start = 1 + j * (1 + draws)
            result[k]["top"][i] = block[0, label] - block[start, label]
            result[k]["random"][i] = block[0, label] - block[start + 1:start + 1 + draws, label].mean()
    return result


# ----------------------------------------------------------------------------- one report

def _top(words: Sequence[str], scores: Sequence[float], count: int) -> list[list]:
    """The `count` distinct words with the highest summed scores, as `[word, score]`."""
    totals = word_totals(words, scores)
    return [[w, round(totals[w], 6)] for w in sorted(totals, key=lambda w: -totals[w])[:count]]


def _check_texts(words: list[list[str]], texts: Sequence[str]) -> None:
    for i, (text, read) in enumerate(zip(texts, words), start=1):
        if not read:
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise UserError(f"input {i} ({shown!r}) has no words the model reads (an empty text?): "
                            "pass texts with words")


def explain_texts(model: Any, texts: Sequence[str], methods: Sequence[str] | None = None, seed: int = 0,
                  samples: int = SAMPLES, steps: int = STEPS, top: int = 5,
                  each: Callable[[list], Iterator] = iter) -> dict:
    """Explain each text's predicted class with every method asked for.

    Args:
        model: a text classifier (`tokens`, `predict_proba`, `class_names`; see `METHODS`).
        texts: raw texts, each with at least one word the model reads.
        methods: names from `METHODS`; None: all that apply to the model.
        seed: LIME's perturbations and SHAP's coalitions (text i uses `seed + i`); the same seed,
            the same report.
        samples: LIME's perturbed copies and SHAP's coalitions per text.
        steps: integrated gradients' path intervals.
        top: words listed per method in each explanation's `top`.
        each: wraps the loop over texts (e.g. a progress bar).

    Returns:
        A JSON-able report: `{"kind": "text", "methods", "seed", "samples", "steps",
        "explanations": [per text: input, label, probabilities, words, and one entry per method]}`.

    Raises:
        UserError: an empty text, or a method that does not apply.
    """
    methods = check_methods(model, methods)
    texts = list(texts)
    words = model.tokens(texts)
    _check_texts(words, texts)
    probabilities, attention = model.predict_proba(texts)
    labels = probabilities.argmax(-1)
    explanations = []
    for i in each(list(range(len(texts)))):
        entry = {"input": texts[i], "label": model.class_names[labels[i]],
                 "probabilities": {n: float(p) for n, p in zip(model.class_names, probabilities[i])},
                 "words": words[i]}
        if "attention" in methods:
            entry["attention"] = _attention_entry(words[i], attention[i], top)
        if "lime" in methods:
            entry["lime"] = _lime_entry(model, words[i], int(labels[i]), samples, seed + i, top)
        if "ig" in methods:
            [ig] = integrated_gradients(model, [texts[i]], [int(labels[i])], steps)
            entry["ig"] = _ig_entry(words[i], ig, steps, top)
        if "shap" in methods:
            entry["shap"] = _shap_entry(model, words[i], int(labels[i]), samples, seed + i, top)
        explanations.append(entry)
    return {"kind": "text", "methods": methods, "seed": seed, "samples": samples, "steps": steps,
            "explanations": explanations}


def _attention_entry(words: list[str], weights: np.ndarray, top: int) -> dict:
    shown = [float(w) for w in weights[:len(words)]]
    return {"weights": shown, "sum": float(np.sum(weights)), "top": _top(words, shown, top)}


def _lime_entry(model: Any, words: list[str], label: int, samples: int, seed: int, top: int) -> dict:
    result = lime_text(words, lambda texts: model.predict_proba(texts)[0], label, samples, seed)
    by_word = dict(zip(result.words, result.weights.tolist()))
    per_position = [by_word[w] for w in words]
    ranked = sorted(by_word, key=lambda w: -by_word[w])[:top]
    return {"weights": per_position, "word_weights": by_word, "intercept": result.intercept,
            "score": result.score, "local_prediction": result.local_prediction, "samples": samples,
            "seed": seed, "selected": [result.words[j] for j in result.selected],
            "top": [[w, round(by_word[w], 6)] for w in ranked]}


def _shap_entry(model: Any, words: list[str], label: int, samples: int, seed: int, top: int) -> dict:
    vocabulary, result = shap_text(words, lambda texts: model.predict_proba(texts)[0], label, samples, seed)
    by_word = dict(zip(vocabulary, result.values.tolist()))
    ranked = sorted(by_word, key=lambda w: -by_word[w])[:top]
    return {"values": [by_word[w] for w in words], "word_values": by_word, "sum": float(result.values.sum()),
            "prediction": result.prediction, "background_prediction": result.background,
            "efficiency_error": result.efficiency_error, "coalitions": result.coalitions, "exact": result.exact,
            "seed": seed, "background": "every word removed (the empty text)",
            "top": [[w, round(by_word[w], 6)] for w in ranked]}


def _ig_entry(words: list[str], ig: IntegratedGradients, steps: int, top: int) -> dict:
    shown = ig.attributions[:len(words)].tolist()
    return {"attributions": shown, "sum": float(ig.attributions.sum()), "prediction": ig.prediction,
            "baseline_prediction": ig.baseline, "completeness_error": ig.completeness_error,
            "steps": steps, "baseline": "all-zero embeddings", "top": _top(words, shown, top)}

