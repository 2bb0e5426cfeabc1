"""The LSTM + attention classifier next to TF-IDF baselines on the same AG News split.

    pip install scikit-learn          # for this benchmark only; not a zoo dependency
    flock /tmp/zoo_heavy.lock python tools/bench_text.py [--run RUN_DIR] [--FIELD VALUE ...]

The split is the recipe's (`python -m train lstm_classifier`): the embedded AG News file,
title + description, 80/20 per class with a fixed seed (6,080 training / 1,520 validation
texts). The LSTM fits on the training texts less its selection slice (`--select-fraction`,
608 texts by default: the epoch is chosen on them, never on the validation texts). Baselines:
TF-IDF of 1-2-grams + logistic regression, and + multinomial naive Bayes, scikit-learn defaults
otherwise (nothing tuned on the validation texts), each trained twice: on the same texts the
LSTM fits on (the fair comparison) and on all training texts (selection slice included). The
LSTM is trained here with the recipe's default config (flags override fields, e.g. `--epochs
5`), or read from `--run` (a finished run of the default split). Prints one table with
validation accuracy, its binomial standard error, wall times and the CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from train.recipes.lstm_classifier import RECIPE, Config, encode, selection_split  # noqa: E402


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    return platform.processor() or platform.machine()


def baselines(train, val, texts: str) -> list[tuple[str, float, float]]:
    """(name, validation accuracy, wall seconds: fit + predict) of the two TF-IDF baselines."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    rows = []
    for name, classifier in (("TF-IDF 1-2-grams + logistic regression", LogisticRegression(max_iter=1000)),
                             ("TF-IDF 1-2-grams + multinomial naive Bayes", MultinomialNB())):
        start = time.perf_counter()
        pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), classifier).fit(*train)
        accuracy = float((pipeline.predict(val[0]) == val[1]).mean())
        rows.append((f"{name} ({texts})", accuracy, time.perf_counter() - start))
    return rows


def epoch_accuracies(run_dir: Path, tag: str = "epoch/val_accuracy") -> list[float]:
    """`tag` (a per-epoch scalar) of every epoch of a run, from its TensorBoard logs."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "logs"), size_guidance={"tensors": 0})
    events.Reload()
    if tag not in events.Tags()["tensors"]:
        return []
    return [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]


def lstm(config: Config, run: Path | None, val) -> tuple[str, float, float | None, list[float], list[float]]:
    """Train (unless `run` is given) and score the saved model on the validation texts."""
    import keras

    import zoo  # noqa: F401  (registers the classes)
    from train.trainer import train

    seconds = None
    if run is None:
        run = Path(tempfile.mkdtemp(prefix="bench_text_")) / "run"
        start = time.perf_counter()
        train(RECIPE, config, run, verbose=False)
        seconds = time.perf_counter() - start
    model = keras.saving.load_model(run / "model.keras")
    probabilities, _ = model.predict_proba(val[0])
    predicted = [model.class_names[i] for i in probabilities.argmax(-1)]
    accuracy = sum(p == t for p, t in zip(predicted, val[1])) / len(val[1])
    return str(run), accuracy, seconds, epoch_accuracies(run), epoch_accuracies(run, "epoch/select_accuracy")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="score this finished run instead of training one")
    for field in dataclasses.fields(Config):
        if field.type in ("int", "float", "str"):
            parser.add_argument("--" + field.name.replace("_", "-"), type=eval(field.type))  # noqa: S307
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k != "run" and v is not None}
    config = dataclasses.replace(Config(), **overrides)
    (train_texts, train_ids), (val_texts, val_ids), names = encode(config)
    (fit_texts, fit_ids), _ = selection_split(train_texts, train_ids, config.select_fraction)
    val = (val_texts, [names[i] for i in val_ids])
    rows = baselines((fit_texts, [names[i] for i in fit_ids]), val, f"{len(fit_texts)} texts, as the LSTM")
    if len(fit_texts) < len(train_texts):
        rows += baselines((train_texts, [names[i] for i in train_ids]), val, f"all {len(train_texts)}")
    where, accuracy, seconds, per_epoch, per_epoch_select = lstm(config, args.run, val)
    chosen = per_epoch_select.index(max(per_epoch_select)) if per_epoch_select and config.restore_best else None
    best = f", epoch {chosen + 1} chosen on the selection slice" if chosen is not None else ""
    rows.append((f"zoo lstm_classifier (saved model{best})", accuracy, seconds))
    if per_epoch:
        rows.append(("  same run, last epoch's weights (TensorBoard)", per_epoch[-1], None))
    print(f"\nAG News split: {len(train_texts)} training ({len(fit_texts)} fitted by the LSTM) / "
          f"{len(val_texts)} validation texts, {len(names)} classes; CPU: {cpu_name()}; LSTM run: {where}")
    if per_epoch_select:
        print("LSTM select_accuracy per epoch (chooses the epoch): " + " ".join(f"{a:.4f}" for a in per_epoch_select))
    if per_epoch:
        print("LSTM val_accuracy per epoch (reported only):       " + " ".join(f"{a:.4f}" for a in per_epoch))
    print("\n| model | validation accuracy (± binomial s.e.) | wall time (s) |\n|---|---|---|")
    for name, acc, sec in rows:
        error = 100 * (acc * (1 - acc) / len(val_texts)) ** 0.5
        print(f"| {name} | {100 * acc:.2f}% ± {error:.2f} | {'-' if sec is None else f'{sec:.1f}'} |")


if __name__ == "__main__":
    main()
