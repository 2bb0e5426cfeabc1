"""Classifier scores in scikit-learn's conventions (NumPy only), shared by `python -m zoo eval`,
the training callbacks and the README figure scripts.

- `match_labels`: the data's label strings -> the model's class ids; labels the model does not
  know are counted per label and left out of the scores (-1), never a crash.
- `classification_report`: accuracy, macro precision / recall / F1, per-class precision /
  recall / F1 / support, the K x K confusion matrix (rows true, columns predicted) and, for two
  classes, ROC-AUC.
- `report_table`: that report as a text table.

Conventions (those of `sklearn.metrics` with `labels=range(K)` and `zero_division=0`):
precision of a class never predicted is 0, recall of a class with no examples is 0, F1 is
`2 TP / (2 TP + FP + FN)` (0 when that is 0/0), and macro averages are unweighted means over
ALL the model's K classes, including classes the data has no example of (those count as 0).
ROC-AUC is the Mann-Whitney statistic of the probability of class 1 (ties averaged), equal to
`sklearn.metrics.roc_auc_score`; undefined (None) when the labels hold one class only.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence

import numpy as np

from zoo.errors import UserError

UNKNOWN = -1  # the id `match_labels` gives a label the model does not know


# ----------------------------------------------------------------------------- labels

def _index_names(class_names: Sequence[str]) -> bool:
    """Whether the class names are "0", "1", ..., "K-1" (e.g. MNIST digits), so integer labels index them."""
    return [str(name).strip() for name in class_names] == [str(i) for i in range(len(class_names))]


def _as_index(label: str) -> int | None:
    """An integer written as text ("3", "03", "3.0"), else None."""
    try:
        value = float(label)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


def match_labels(labels: Sequence, class_names: Sequence[str]) -> tuple[np.ndarray, dict[str, int]]:
    """The model's class id of each label, and the labels it does not know.

    A label matches a class name when the two are equal after stripping spaces; when the class
    names are "0".."K-1", a label that is an integer in 0..K-1 ("3", "3.0") matches too.

    Args:
        labels: one label per example (strings, or numbers compared as their text).
        class_names: the model's class names, in id order.

    Returns:
        `(ids, unknown)`: int64 `(N,)` class ids, `UNKNOWN` (-1) for a label the model does not
        know; and `{label: count}` of those labels, most frequent first.

    Raises:
        UserError: no label is known to the model (the message lists its classes and the
            data's labels).
    """
    names = [str(name).strip() for name in class_names]
    by_name = {name: i for i, name in enumerate(names)}
    indexable = _index_names(names)
    texts = [str(label).strip() for label in labels]
    ids = np.full(len(texts), UNKNOWN, np.int64)
    for n, text in enumerate(texts):
        index = by_name.get(text)
        if index is None and indexable:
            number = _as_index(text)
            index = number if number is not None and 0 <= number < len(names) else None
        ids[n] = UNKNOWN if index is None else index
    counts = Counter(text for text, i in zip(texts, ids) if i == UNKNOWN)
    unknown = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    if len(texts) and not np.any(ids != UNKNOWN):
        seen = ", ".join(repr(label) for label in list(unknown)[:10]) + (", ..." if len(unknown) > 10 else "")
        raise UserError(f"none of the {len(texts)} example(s) has a label the model knows: its classes are "
                        f"{', '.join(map(repr, names))}; the data's labels are {seen}; pass data labelled "
                        "with the model's classes (or the right --label-column)")
    return ids, unknown


# ----------------------------------------------------------------------------- scores

def confusion_matrix(true_ids, predicted_ids, num_classes: int) -> np.ndarray:
    """int64 `(K, K)` counts: row = true class, column = predicted class."""
    true, predicted = np.asarray(true_ids, np.int64), np.asarray(predicted_ids, np.int64)
    return np.bincount(true * num_classes + predicted, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    numerator, denominator = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def average_ranks(values) -> np.ndarray:
    """1-based ranks of `values`, tied values sharing the mean of their ranks (scipy's rankdata)."""
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first position of each tie group
    ends = np.r_[starts[1:], len(values)]
    group_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def roc_auc(is_positive, scores) -> float | None:
    """ROC-AUC by the Mann-Whitney U statistic with average ranks for ties:
    `(sum of the positives' ranks - P (P + 1) / 2) / (P N)`; None when P or N is 0."""
    positive = np.asarray(is_positive, bool)
    count_p, count_n = int(positive.sum()), int((~positive).sum())
    if count_p == 0 or count_n == 0:
        return None
    rank_sum = float(average_ranks(scores)[positive].sum())
    return (rank_sum - count_p * (count_p + 1) / 2.0) / (count_p * count_n)


def classification_report(true_ids, predicted_ids, class_names: Sequence[str],
                          probabilities=None) -> dict:
    """Scores of predicted class ids against true ones, in scikit-learn's conventions (module
    docstring: zero_division=0, macro averages over all the model's classes).

    Args:
        true_ids: int `(N,)` true class ids in 0..K-1 (unknown labels already left out).
        predicted_ids: int `(N,)` predicted class ids in 0..K-1.
        class_names: the K class names, in id order.
        probabilities: float `(N, K)` class probabilities; with K = 2 they give ROC-AUC (the
            probability of class 1 as the score).

    Returns:
        A JSON-able dict: `examples`, `accuracy`, `macro_precision`, `macro_recall`, `macro_f1`,
        `class_names`, `per_class` ({name: {precision, recall, f1, support}}), `confusion_matrix`
        (K lists of K counts, rows true), and with K = 2 and probabilities `roc_auc` (None when
        the labels hold one class only).
    """
    names = [str(name) for name in class_names]
    k = len(names)
    true, predicted = np.asarray(true_ids, np.int64).reshape(-1), np.asarray(predicted_ids, np.int64).reshape(-1)
    if true.shape != predicted.shape:
        raise ValueError(f"{len(true)} true ids but {len(predicted)} predicted ids")
    if len(true) and (min(true.min(), predicted.min()) < 0 or max(true.max(), predicted.max()) >= k):
        raise ValueError(f"class ids must be in 0..{k - 1}")
    counts = confusion_matrix(true, predicted, k)
    hits, support, predicted_count = np.diag(counts), counts.sum(axis=1), counts.sum(axis=0)
    precision, recall = _divide(hits, predicted_count), _divide(hits, support)
    f1 = _divide(2 * hits, support + predicted_count)  # = 2 TP / (2 TP + FP + FN)
    report = {"examples": int(len(true)), "accuracy": float(_divide(hits.sum(), len(true))),
              "macro_precision": float(precision.mean()), "macro_recall": float(recall.mean()),
              "macro_f1": float(f1.mean()), "class_names": names,
              "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                            for name, p, r, f, s in zip(names, precision, recall, f1, support)},
              "confusion_matrix": counts.tolist()}
    if k == 2 and probabilities is not None:
        scores = np.asarray(probabilities, np.float64).reshape(len(true), k)[:, 1]
        report["roc_auc"] = roc_auc(true == 1, scores)
    return report


# ----------------------------------------------------------------------------- text

def _width(text: str) -> int:
    """Terminal columns of `text`: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    space = " " * max(width - _width(text), 0)
    return space + text if right else text + space


def _cells(rows: list[list[str]]) -> list[str]:
    """Rows of cells as aligned lines: the first column left-aligned, the others right-aligned."""
    widths = [max(_width(row[c]) for row in rows) for c in range(len(rows[0]))]
    return ["  ".join(_pad(cell, widths[c], right=c > 0) for c, cell in enumerate(row)).rstrip() for row in rows]


def report_table(report: dict) -> str:
    """A `classification_report` (with the `unknown_labels` of `match_labels`, if any) as text:
    accuracy and macro scores, a row per class, the confusion matrix, ROC-AUC for 2 classes."""
    names = report["class_names"]
    lines = [f"  accuracy         {report['accuracy']:.4f}",
             f"  macro-F1         {report['macro_f1']:.4f}",
             f"  macro precision  {report['macro_precision']:.4f}",
             f"  macro recall     {report['macro_recall']:.4f}",
             f"  (macro: unweighted mean over the model's {len(names)} classes; a class never predicted "
             "has precision 0)", ""]
    rows = [["class", "precision", "recall", "F1", "support"]]
    rows += [[name, f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}", str(c["support"])]
             for name, c in report["per_class"].items()]
    lines += _cells(rows)
    empty = [name for name, c in report["per_class"].items() if c["support"] == 0]
    if empty:
        lines.append(f"(no examples of {', '.join(map(repr, empty))}: their recall and F1 count as 0 "
                     "in the macro averages)")
    lines += ["", "confusion matrix (rows: true class, columns: predicted class)"]
    lines += _cells([["true \\ predicted", *names]] +
                    [[name, *map(str, row)] for name, row in zip(names, report["confusion_matrix"])])
    if "roc_auc" in report:
        auc = "undefined (the labels hold one class only)" if report["roc_auc"] is None else f"{report['roc_auc']:.4f}"
        lines += ["", f"ROC-AUC (probability of {names[1]!r} as the score): {auc}"]
    unknown = report.get("unknown_labels") or {}
    if unknown:
        shown = ", ".join(f"{label!r} x {count}" for label, count in list(unknown.items())[:20])
        more = f", and {len(unknown) - 20} more label(s)" if len(unknown) > 20 else ""
        lines += ["", f"unknown labels, left out of the scores ({report['unknown_examples']} example(s)): "
                      f"{shown}{more}"]
    return "\n".join(lines)
