"""The LSTM and Transformer classifiers next to tuned TF-IDF baselines on the same split, in any language.

    pip install scikit-learn          # for this benchmark only; not a zoo dependency
    flock /tmp/zoo_heavy.lock python tools/bench_text.py [--run RUN_DIR] [--transformer-run RUN_DIR]
        [--seeds 0,1,2] [--sample N] [--FIELD VALUE ...] [--transformer-FIELD VALUE ...]
        [--skip-lstm] [--skip-transformer]
    # Chinese reviews, sentiment (--label-column cat: the 9 product categories):
    python tools/bench_text.py --data ../shared/data/text_zh/online_shopping_9_cats.csv \
        --text-column review --label-column label --sample 12000 --seeds 0,1,2

The split is the recipes' (`python -m train lstm_classifier` / `transformer_classifier`): by
default the embedded AG News file, title + description, 80/20 per class with a fixed seed (6,080
training / 1,520 validation texts); `--data` and the column flags as in training, and
`--sample N` first draws N texts at random (seed 0, the same N texts every time). Both networks
fit on the training texts less their selection slice (`--select-fraction`, 10% of each class:
the epoch is chosen on it, never on the validation texts), with their recipes' defaults (tokens,
token pairs and sequence length chosen from the texts, as a user's run would). Baselines, fitted
on the same texts as the networks, each with its regularization chosen on the same selection
slice (the care the networks get): TF-IDF word 1-2-grams + logistic regression (C in 0.1, 1,
10, 100), character 1-3-grams + logistic regression (the strong baseline in Chinese), word
1-2-grams + multinomial naive Bayes (alpha in 0.01, 0.1, 1). In one run, the LSTM and the
Transformer are trained here, one after the other (`--FIELD VALUE` overrides an LSTM field, e.g.
`--epochs 5`; `--transformer-FIELD VALUE` a Transformer field; the data and split fields given
for the LSTM apply to both, so they always share the split), or read from `--run` /
`--transformer-run` (finished runs of the default split). `--seeds 0,1,2` trains each network
once per seed (initial weights, batch order and dropout change; the split does not) and adds
their mean and standard deviation over the seeds: one run's accuracy moves by about a point
with the seed alone. Prints one table with validation accuracy, its binomial standard error,
wall times (training, for the networks) and the CPU, then a paired comparison of each network
run with each baseline: on how many validation texts only one of the two is right, and the
exact McNemar test's two-sided p-value (both classify the same texts, so this is sharper than
comparing the two accuracies' standard errors).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from train.recipes import transformer_classifier  # noqa: E402
from train.recipes._text import encode, selection_split  # noqa: E402
from train.recipes.lstm_classifier import RECIPE, Config  # noqa: E402

# Fields that decide which texts are read and how they are split: the LSTM's values go to both.
SPLIT_FIELDS = ("data", "val_data", "val_fraction", "text_column", "label_column", "limit", "select_fraction")
PREFIX = "transformer_"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    return platform.processor() or platform.machine()


BASELINES = (  # name, TfidfVectorizer settings, classifier, its regularization settings tried on the selection slice
    ("TF-IDF word 1-2-grams + logistic regression", {"ngram_range": (1, 2)}, "logistic", (0.1, 1.0, 10.0, 100.0)),
    ("TF-IDF character 1-3-grams + logistic regression", {"analyzer": "char", "ngram_range": (1, 3)}, "logistic",
     (0.1, 1.0, 10.0, 100.0)),
    ("TF-IDF word 1-2-grams + multinomial naive Bayes", {"ngram_range": (1, 2)}, "bayes", (0.01, 0.1, 1.0)),
)


def baselines(fit, select, val) -> list[tuple[str, float, float, list]]:
    """(name, validation accuracy, wall seconds: every fit + predict, predicted labels) of each
    TF-IDF baseline, its regularization (logistic regression's C, naive Bayes' alpha) chosen by
    the accuracy on the selection slice (`select`), as the networks choose their epoch."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    rows = []
    for name, vectorizer, kind, settings in BASELINES:
        start, best = time.perf_counter(), None
        for value in settings:
            classifier = LogisticRegression(C=value, max_iter=2000) if kind == "logistic" else MultinomialNB(alpha=value)
            pipeline = make_pipeline(TfidfVectorizer(**vectorizer), classifier).fit(*fit)
            score = accuracy(list(pipeline.predict(select[0])), select[1]) if select[0] else 0.0
            if best is None or score > best[0]:
                best = (score, value, pipeline)
        predicted = list(best[2].predict(val[0]))
        label = f"{name} ({'C' if kind == 'logistic' else 'alpha'} = {best[1]:g} chosen on the selection slice)"
        rows.append((label, accuracy(predicted, val[1]), time.perf_counter() - start, predicted))
    return rows


def accuracy(predicted, truth) -> float:
    """Share of the labels in `predicted` equal to those in `truth`."""
    return sum(p == t for p, t in zip(predicted, truth)) / len(truth)


def mcnemar(truth, first, second) -> tuple[int, int, float]:
    """(texts only `first` gets right, texts only `second` gets right, exact two-sided McNemar
    p-value: the binomial test of the first count among the discordant ones, p = 1/2)."""
    only_first = sum(a == t != b for t, a, b in zip(truth, first, second))
    only_second = sum(b == t != a for t, a, b in zip(truth, first, second))
    n = only_first + only_second
    tail = sum(math.comb(n, i) for i in range(min(only_first, only_second) + 1)) / 2 ** n
    return only_first, only_second, min(1.0, 2 * tail)


def epoch_accuracies(run_dir: Path, tag: str = "epoch/val_accuracy") -> list[float]:
    """`tag` (a per-epoch scalar) of every epoch of a run, from its TensorBoard logs."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "logs"), size_guidance={"tensors": 0})
    events.Reload()
    if tag not in events.Tags()["tensors"]:
        return []
    return [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]


def network(recipe, config, run: Path | None, val) -> dict:
    """Train `recipe` with `config` (unless `run` is given) and score the saved model on the
    validation texts: run dir, accuracy, training seconds, per-epoch val and select accuracy."""
    import keras

    import zoo  # noqa: F401  (registers the classes)
    from train.trainer import train

    seconds = None
    if run is not None:  # report the config that run trained with, not this script's
        saved = json.loads((run / "config.json").read_text())["config"]
        fields = {f.name for f in dataclasses.fields(config)}
        config = dataclasses.replace(config, **{k: tuple(v) if isinstance(v, list) else v
                                                for k, v in saved.items() if k in fields})
    else:
        run = Path(tempfile.mkdtemp(prefix=f"bench_text_{recipe.name}_")) / "run"
        start = time.perf_counter()
        train(recipe, config, run, verbose=False)
        seconds = time.perf_counter() - start
    model = keras.saving.load_model(run / "model.keras")
    probabilities, _ = model.predict_proba(val[0])
    predicted = [model.class_names[i] for i in probabilities.argmax(-1)]
    return {"run": str(run), "accuracy": accuracy(predicted, val[1]), "seconds": seconds, "predicted": predicted,
            "val": epoch_accuracies(run),
            "select": epoch_accuracies(run, "epoch/select_accuracy"), "config": config}


def network_rows(name: str, result: dict) -> list[tuple[str, float, float | None]]:
    """Table rows of one network run: the saved model, and its last epoch when it differs."""
    select, config = result["select"], result["config"]
    chosen = select.index(max(select)) if select and config.restore_best else None
    best = f", epoch {chosen + 1} of {config.epochs} chosen on the selection slice" if chosen is not None else ""
    rows = [(f"zoo {name} (seed {config.seed}: saved model{best})", result["accuracy"], result["seconds"])]
    if result["val"]:
        rows.append(("  same run, last epoch's weights (TensorBoard)", result["val"][-1], None))
    return rows


def seed_summary(name: str, results: list[dict]) -> str:
    """`name: mean ± standard deviation over seeds (the seeds' accuracies)` of the saved models."""
    accuracies = [100 * r["accuracy"] for r in results]
    mean = sum(accuracies) / len(accuracies)
    spread = (sum((a - mean) ** 2 for a in accuracies) / (len(accuracies) - 1)) ** 0.5
    seconds = [r["seconds"] for r in results if r["seconds"] is not None]
    time_text = f", {sum(seconds) / len(seconds):.1f} s of training per run" if seconds else ""
    return (f"zoo {name} over {len(results)} seeds: {mean:.2f}% mean ± {spread:.2f} standard deviation "
            f"(seeds {', '.join(str(r['config'].seed) for r in results)}: "
            f"{', '.join(f'{a:.2f}%' for a in accuracies)}){time_text}")


def parse(argv) -> tuple[argparse.Namespace, Config, transformer_classifier.Config]:
    """Flags -> (args, LSTM config, Transformer config); the split fields are shared."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="score this finished lstm_classifier run instead of training one")
    parser.add_argument("--transformer-run", type=Path, help="score this finished transformer_classifier run")
    parser.add_argument("--sample", type=int, default=0, help="use this many texts of --data drawn at random "
                        "(seed 0) before the split (default 0: all)")
    parser.add_argument("--skip-lstm", action="store_true", help="leave the LSTM out")
    parser.add_argument("--skip-transformer", action="store_true", help="leave the Transformer out")
    parser.add_argument("--seeds", type=_seeds, default=None,
                        help="comma-separated seeds: train each network once per seed and report the mean "
                             "and standard deviation (default: the config's seed, one run)")
    for prefix, config_class in (("", Config), (PREFIX, transformer_classifier.Config)):
        for field in dataclasses.fields(config_class):
            if field.type in ("int", "float", "str") and not (prefix and field.name in SPLIT_FIELDS):
                parser.add_argument("--" + (prefix + field.name).replace("_", "-"), dest=prefix + field.name,
                                    type=eval(field.type))  # noqa: S307
    args = parser.parse_args(argv)
    given = {k: v for k, v in vars(args).items() if v is not None and k not in ("run", "transformer_run", "seeds", "sample")
             and not k.startswith("skip_")}
    config = dataclasses.replace(Config(), **{k: v for k, v in given.items() if not k.startswith(PREFIX)})
    transformer = dataclasses.replace(
        transformer_classifier.Config(), **{f: getattr(config, f) for f in SPLIT_FIELDS},
        **{k[len(PREFIX):]: v for k, v in given.items() if k.startswith(PREFIX)})
    config.validate()
    transformer.validate()
    if args.seeds and (args.run or args.transformer_run):
        parser.error("--seeds trains the networks; leave out --run / --transformer-run")
    return args, config, transformer


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 0,1,2, got {text!r}") from None
    if len(seeds) < 2 or len(set(seeds)) < len(seeds):
        raise argparse.ArgumentTypeError(f"give at least two different seeds, got {text!r}")
    return seeds


def print_report(rows, results: dict, sizes: tuple[int, int, int, int], paired: list, truth) -> None:
    """The split, the CPU, each network run's per-epoch accuracies, the table, the seed means,
    and each network run paired with the `paired` baselines (name, predictions)."""
    train_count, fit_count, val_count, classes = sizes
    print(f"\nsplit: {train_count} training ({fit_count} fitted by the networks and the baselines) / "
          f"{val_count} validation texts, {classes} classes; CPU: {cpu_name()}")
    for name, runs in results.items():
        for result in runs:
            print(f"{name} run: {result['run']}\n  config: {json.dumps(result['config'].to_dict())}")
            if result["select"]:
                print("  select_accuracy per epoch (chooses the epoch): "
                      + " ".join(f"{a:.4f}" for a in result["select"]))
            if result["val"]:
                print("  val_accuracy per epoch (reported only):       " + " ".join(f"{a:.4f}" for a in result["val"]))
    print("\n| model | validation accuracy (± binomial s.e.) | wall time (s): baselines fit + predict, "
          "networks training |\n|---|---|---|")
    for name, acc, sec in rows:
        error = 100 * (acc * (1 - acc) / val_count) ** 0.5
        print(f"| {name} | {100 * acc:.2f}% ± {error:.2f} | {'-' if sec is None else f'{sec:.1f}'} |")
    for name, runs in results.items():
        if len(runs) > 1:
            print(seed_summary(name, runs))
    print("\nPaired with the baselines fitted on the same texts (validation texts only the network / "
          "only the baseline gets right; exact McNemar two-sided p):")
    for name, runs in results.items():
        for result in runs:
            pairs = [f"{baseline.split(' (')[0].removeprefix('TF-IDF ')}: {a} / {b}, p = {p:.3g}"
                     for baseline, predicted in paired
                     for a, b, p in [mcnemar(truth, result["predicted"], predicted)]]
            print(f"  {name} seed {result['config'].seed}: " + "; ".join(pairs))


def sampled(config: Config, count: int) -> Config:
    """`config` reading `count` texts drawn at random (seed 0, a fixed sample) from its data,
    written to a temporary CSV (`label,text`); `count` 0: the config unchanged."""
    import csv

    import numpy as np

    from zoo.data.text import load_labelled_texts

    if not count:
        return config
    column = lambda value: value or None  # noqa: E731
    texts, labels = load_labelled_texts(config.data, "train", column(config.text_column), column(config.label_column))
    if count > len(texts):
        raise SystemExit(f"--sample {count} is more than the {len(texts)} texts of {config.data}")
    keep = np.sort(np.random.default_rng(0).choice(len(texts), count, replace=False))
    path = Path(tempfile.mkdtemp(prefix="bench_text_sample_")) / "sample.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["label", "text"])
        writer.writerows((labels[i], texts[i]) for i in keep)
    print(f"sample: {count} of the {len(texts)} texts of {config.data} (seed 0): {path}")
    return dataclasses.replace(config, data=str(path), text_column="text", label_column="label", limit=0)


def main(argv=None) -> None:
    args, config, transformer = parse(argv)
    config = sampled(config, args.sample)
    transformer = dataclasses.replace(transformer, **{f: getattr(config, f) for f in SPLIT_FIELDS})
    (train_texts, train_ids), (val_texts, val_ids), names = encode(config)
    (fit_texts, fit_ids), (select_texts, select_ids) = selection_split(train_texts, train_ids, config.select_fraction)
    val = (val_texts, [names[i] for i in val_ids])
    same = baselines((fit_texts, [names[i] for i in fit_ids]), (select_texts, [names[i] for i in select_ids]), val)
    rows = [row[:3] for row in same]
    seeds = args.seeds or [None]
    results = {}
    for name, recipe, base, run, skip in (("lstm_classifier", RECIPE, config, args.run, args.skip_lstm),
                                          ("transformer_classifier", transformer_classifier.RECIPE, transformer,
                                           args.transformer_run, args.skip_transformer)):
        if not skip:
            results[name] = [network(recipe, base if seed is None else dataclasses.replace(base, seed=seed), run, val)
                             for seed in seeds]
    for name, runs in results.items():
        for result in runs:
            rows += network_rows(name, result)
    print_report(rows, results, (len(train_texts), len(fit_texts), len(val_texts), len(names)),
                 [(row[0], row[3]) for row in same], val[1])


if __name__ == "__main__":
    main()
