"""Faithfulness of the text explainers, measured by the deletion test, and their time per text.

    flock /tmp/zoo_heavy.lock python tools/bench_explain.py [--run LSTM_RUN] [--transformer-run RUN]
        [--no-transformer] [--texts 200] [--samples 5000] [--steps 50] [--seed 0]

Models: a finished `lstm_classifier` run (`--run`) and a `transformer_classifier` run
(`--transformer-run`); without them each is trained here with its recipe's default config (the
embedded AG News split, about a minute each on 2 CPU cores). Texts: `--texts` validation texts
of the recipe's fixed 80/20 split (a seeded sample), never seen in training.

For each explainer (zoo/explain/text.py: attention, LIME with `--samples` copies, integrated
gradients with `--steps`, Kernel SHAP with `--samples` coalitions), each text's distinct words are ranked by the explainer (summed over a
word's occurrences) and the deletion test removes the top k (every occurrence) for k = 1, 3, 5:
the drop of the predicted class's probability, next to the mean drop over 10 removals of k
random distinct words (the same random words for every explainer). A faithful explainer's drop
is larger than the random one. Also printed: seconds per explanation (one text, one method,
after a warm-up text that traces the TensorFlow functions), LIME's mean R^2, integrated
gradients' mean and largest completeness error, SHAP's efficiency error and share of texts
with exact Shapley values, and how flat the attention is (its largest
weight per text against 1 / words, the uniform weight). Prints markdown tables and the CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tools.bench_text import cpu_name  # noqa: E402

KS = (1, 3, 5)
DRAWS = 10


def trained_run(recipe_name: str, run: Path | None) -> tuple[Path, float | None]:
    """`run`, or a fresh run of the recipe's default config (and its training seconds)."""
    if run is not None:
        return run, None
    import importlib

    from train.trainer import train

    module = importlib.import_module(f"train.recipes.{recipe_name}")
    run = Path(tempfile.mkdtemp(prefix=f"bench_explain_{recipe_name}_")) / "run"
    start = time.perf_counter()
    train(module.RECIPE, module.Config(), run, verbose=False)
    return run, time.perf_counter() - start


def validation_texts(count: int, seed: int) -> list[str]:
    """`count` texts of the recipes' fixed validation split, a seeded sample in file order."""
    from train.recipes._text import encode
    from train.recipes.lstm_classifier import Config

    _, (texts, _), _ = encode(Config())
    chosen = np.sort(np.random.default_rng(seed).choice(len(texts), min(count, len(texts)), replace=False))
    return [texts[i] for i in chosen]


def explain_one(model, method: str, text: str, words: list[str], label: int, args) -> tuple[list[str], dict]:
    """One method on one text: its word ranking and its diagnostics."""
    from zoo.explain.text import integrated_gradients, lime_text, shap_text, word_ranking

    if method == "attention":
        weights = model.predict_proba([text])[1][0, :len(words)]
        return word_ranking(words, weights), {"largest": float(weights.max()), "uniform": 1 / len(words)}
    if method == "lime":
        result = lime_text(words, lambda texts: model.predict_proba(texts)[0], label, args.samples, args.seed)
        by_word = dict(zip(result.words, result.weights))
        return sorted(by_word, key=lambda w: -by_word[w]), {"r2": result.score}
    if method == "shap":
        vocabulary, shap = shap_text(words, lambda texts: model.predict_proba(texts)[0], label, args.samples,
                                     args.seed)
        by_word = dict(zip(vocabulary, shap.values))
        return sorted(by_word, key=lambda w: -by_word[w]), {"efficiency": shap.efficiency_error,
                                                              "exact": shap.exact}
    [ig] = integrated_gradients(model, [text], [label], args.steps)
    return word_ranking(words, ig.attributions[:len(words)]), {"completeness": ig.completeness_error}


def bench_model(name: str, run: Path, texts: list[str], args) -> list[dict]:
    """Rows of the deletion-test table for one model, one per explainer."""
    import keras

    import zoo  # noqa: F401  (registers the classes)
    from zoo.explain.text import available_methods, deletion_test

    model = keras.saving.load_model(run / "model.keras")
    words = model.tokens(texts)
    labels = model.predict_proba(texts)[0].argmax(-1)
    rows, random_baseline = [], None
    for method in available_methods(model):
        explain_one(model, method, texts[0], words[0], int(labels[0]), args)  # warm-up: traces
        rankings, extras, start = [], [], time.perf_counter()
        for text, text_words, label in zip(texts, words, labels):
            ranking, extra = explain_one(model, method, text, text_words, int(label), args)
            rankings.append(ranking)
            extras.append(extra)
        seconds = (time.perf_counter() - start) / len(texts)
        drops = deletion_test(model, words, rankings, KS, args.seed, DRAWS)
        randoms = np.stack([drops[k]["random"] for k in KS])
        assert random_baseline is None or np.array_equal(random_baseline, randoms), "random words differ"
        random_baseline = randoms
        rows.append({"model": name, "method": method, "seconds": seconds, "drops": drops, "extras": extras})
        print(f"{name} {method}: {seconds:.3f} s per text", flush=True)
    return rows


def mean_se(values: np.ndarray) -> str:
    return f"{values.mean():.3f} ± {values.std(ddof=1) / np.sqrt(len(values)):.3f}"


def print_tables(rows: list[dict], texts: list[str], runs: dict, args) -> None:
    print(f"\n{len(texts)} validation texts of the AG News split (seed {args.seed}); CPU: {cpu_name()}; "
          f"LIME {args.samples} copies, IG {args.steps} steps, SHAP {args.samples} coalitions; runs: "
          + ", ".join(f"{k} {v[0]}" + (f" (trained here in {v[1]:.0f} s)" if v[1] else "") for k, v in runs.items()))
    header = " | ".join(f"top-{k} | random-{k}" for k in KS)
    print(f"\nMean drop of the predicted class's probability (± s.e. over texts) when words are removed\n\n"
          f"| model | explainer | {header} | s / text |\n|---|---|" + "---|" * (2 * len(KS) + 1))
    for row in rows:
        cells = " | ".join(f"**{mean_se(row['drops'][k]['top'])}** | {mean_se(row['drops'][k]['random'])}"
                           for k in KS)
        print(f"| {row['model']} | {row['method']} | {cells} | {row['seconds']:.3f} |")
    print("\n| model | LIME mean R^2 | IG completeness error: mean | max | largest attention weight: mean "
          "| 1 / words: mean | SHAP efficiency error: max | texts with exact SHAP |\n|---|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(row["model"] for row in rows):
        extras = {row["method"]: row["extras"] for row in rows if row["model"] == name}
        ig = [e["completeness"] for e in extras["ig"]]
        print(f"| {name} | {np.mean([e['r2'] for e in extras['lime']]):.3f} | {np.mean(ig):.2g} | {np.max(ig):.2g} "
              f"| {np.mean([e['largest'] for e in extras['attention']]):.3f} "
              f"| {np.mean([e['uniform'] for e in extras['attention']]):.3f} "
              f"| {np.max([e['efficiency'] for e in extras['shap']]):.2g} "
              f"| {np.mean([e['exact'] for e in extras['shap']]):.1%} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a finished lstm_classifier run (default: train one)")
    parser.add_argument("--transformer-run", type=Path, help="a finished transformer_classifier run "
                        "(default: train one)")
    parser.add_argument("--no-transformer", action="store_true", help="bench the LSTM only")
    parser.add_argument("--texts", type=int, default=200, help="validation texts (default 200)")
    parser.add_argument("--samples", type=int, default=5000, help="LIME copies and SHAP coalitions per text "
                        "(default 5000)")
    parser.add_argument("--steps", type=int, default=50, help="integrated-gradients steps (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="text sample, LIME and random words (default 0)")
    args = parser.parse_args(argv)
    texts = validation_texts(args.texts, args.seed)
    runs = {"lstm_classifier": trained_run("lstm_classifier", args.run)}
    if not args.no_transformer:
        runs["transformer_classifier"] = trained_run("transformer_classifier", args.transformer_run)
    rows = [row for name, (run, _) in runs.items() for row in bench_model(name, run, texts, args)]
    print_tables(rows, texts, runs, args)


if __name__ == "__main__":
    main()
