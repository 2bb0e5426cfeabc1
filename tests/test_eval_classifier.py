"""zoo.evaluation.classifier against scikit-learn, zoo.visualize.confusion_image, and
`python -m zoo eval` on each classifier kind (text, the SOM-RBF-attention hybrid, an RBF network).

The command runs in-process through `zoo.__main__.main` (the same code as `python -m zoo` minus
the interpreter start); the models are tiny and untrained: what is checked is that every number
`eval` prints equals scikit-learn's on the model's own predictions.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from helpers import assert_main_user_error, run_main
from PIL import Image
from scipy.stats import rankdata
from sklearn import metrics

import zoo
from zoo.data import load_images
from zoo.errors import UserError
from zoo.evaluation.classifier import (UNKNOWN, average_ranks, classification_report, match_labels, report_table,
                                       roc_auc)
from zoo.models import VAE, RBFNetwork, TextClassifier
from zoo.models.som_rbf_attention import SomRbfAttentionClassifier
from zoo.visualize import confusion_image

TEXTS = ["stocks fall as oil prices rise", "the team won the final match", "shares and profits up",
         "striker scores twice in the cup", "bank profit doubles", "goalkeeper saves a penalty",
         "markets rally on rate cut", "a late goal wins it", "oil and gas shares slide", "the coach resigns"]


# ----------------------------------------------------------------------------- scores vs scikit-learn

def _sklearn_report(true, predicted, k: int, scores=None) -> dict:
    """The same report, every number from sklearn.metrics (labels = all K classes, zero_division=0)."""
    labels = list(range(k))
    p, r, f, s = metrics.precision_recall_fscore_support(true, predicted, labels=labels, zero_division=0)
    macro = metrics.precision_recall_fscore_support(true, predicted, labels=labels, average="macro",
                                                    zero_division=0)
    out = {"accuracy": metrics.accuracy_score(true, predicted), "macro_precision": macro[0],
           "macro_recall": macro[1],
           "macro_f1": metrics.f1_score(true, predicted, labels=labels, average="macro", zero_division=0),
           "precision": p, "recall": r, "f1": f, "support": s,
           "confusion_matrix": metrics.confusion_matrix(true, predicted, labels=labels)}
    if scores is not None:
        out["roc_auc"] = metrics.roc_auc_score(true, scores)
    return out


def _assert_matches_sklearn(report: dict, true, predicted, names, scores=None) -> None:
    expected = _sklearn_report(np.asarray(true), np.asarray(predicted), len(names), scores)
    assert report["examples"] == len(true) and report["class_names"] == list(names)
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1"):
        assert report[key] == pytest.approx(expected[key], abs=1e-12), key
    for key in ("precision", "recall", "f1"):
        got = [report["per_class"][name][key] for name in names]
        np.testing.assert_allclose(got, expected[key], atol=1e-12, err_msg=key)
    assert [report["per_class"][name]["support"] for name in names] == expected["support"].tolist()
    assert report["confusion_matrix"] == expected["confusion_matrix"].tolist()
    if scores is not None:
        assert report["roc_auc"] == pytest.approx(expected["roc_auc"], abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_report_equals_sklearn_with_a_class_never_predicted_and_one_absent(seed):
    rng = np.random.default_rng(seed)
    n = 60 + 17 * seed
    true = rng.choice([0, 1, 2, 4], n)  # class 3 has no examples (support 0, still in the macro means)
    predicted = np.where(rng.random(n) < 0.5, true, rng.choice([0, 1, 3, 4], n))
    predicted[predicted == 2] = 4  # class 2 never predicted (precision 0 by zero_division=0)
    names = ["zero", "one", "two", "three", "four"]
    report = classification_report(true, predicted, names)
    assert report["per_class"]["two"]["precision"] == 0.0 and report["per_class"]["three"]["support"] == 0
    assert "roc_auc" not in report
    _assert_matches_sklearn(report, true, predicted, names)


@pytest.mark.parametrize("seed", range(5))
def test_binary_roc_auc_equals_sklearn_with_ties(seed):
    rng = np.random.default_rng(100 + seed)
    n = 50
    true = rng.integers(0, 2, n)
    p1 = np.round(np.clip(0.5 * true + 0.6 * rng.random(n) - 0.05, 0, 1), 1)  # one decimal: many ties
    assert len(np.unique(p1)) < n / 3
    probabilities = np.stack([1 - p1, p1], axis=1)
    predicted = probabilities.argmax(axis=1)
    report = classification_report(true, predicted, ["neg", "pos"], probabilities)
    _assert_matches_sklearn(report, true, predicted, ["neg", "pos"], scores=p1)


def test_roc_auc_edges():
    assert roc_auc([True, True], [0.2, 0.9]) is None and roc_auc([False], [0.3]) is None
    assert roc_auc([False, True], [0.5, 0.5]) == 0.5 and roc_auc([False, True], [0.1, 0.9]) == 1.0
    report = classification_report([1, 1], [0, 1], ["a", "b"], [[0.6, 0.4], [0.3, 0.7]])
    assert report["roc_auc"] is None and "undefined" in report_table(report)
    values = np.random.default_rng(0).integers(0, 5, 40)
    np.testing.assert_array_equal(average_ranks(values), rankdata(values))


def test_empty_report_has_zeros_not_errors():
    report = classification_report([], [], ["a", "b", "c"])
    assert report["examples"] == 0 and report["accuracy"] == 0.0 and report["macro_f1"] == 0.0
    with pytest.raises(ValueError, match="0..2"):
        classification_report([0, 3], [0, 1], ["a", "b", "c"])


# ----------------------------------------------------------------------------- labels

def test_match_labels_counts_unknown_labels_and_strips_spaces():
    ids, unknown = match_labels([" pos", "neg ", "maybe", "pos", "?", "maybe", "Pos"], ["neg", "pos"])
    assert ids.tolist() == [1, 0, UNKNOWN, 1, UNKNOWN, UNKNOWN, UNKNOWN]
    assert unknown == {"maybe": 2, "?": 1, "Pos": 1} and list(unknown) == ["maybe", "?", "Pos"]


def test_match_labels_integer_labels_index_digit_class_names():
    digits = [str(i) for i in range(10)]
    ids, unknown = match_labels(["3", "3.0", " 07", 9, np.int64(2), "10", "-1", "2.5"], digits)
    assert ids.tolist() == [3, 3, 7, 9, 2, UNKNOWN, UNKNOWN, UNKNOWN]
    assert unknown == {"-1": 1, "10": 1, "2.5": 1}
    ids, _ = match_labels(["1", "2", "x"], ["1", "2", "3"])  # names not 0..K-1: by name only
    assert ids.tolist() == [0, 1, UNKNOWN]
    with pytest.raises(UserError):  # integers never index named classes
        match_labels(["0", "1"], ["a", "b"])


def test_match_labels_all_unknown_names_both_sides():
    with pytest.raises(UserError) as error:
        match_labels(["1", "2", "2"], ["World", "Sports"])
    message = str(error.value)
    assert "'World', 'Sports'" in message and "'2', '1'" in message and "3 example(s)" in message
    assert match_labels([], ["a", "b"])[0].shape == (0,)  # no examples: the caller says so


# ----------------------------------------------------------------------------- table and picture

def test_report_table_lists_classes_confusion_auc_and_unknown_labels():
    report = classification_report([0, 1, 1, 0], [0, 1, 0, 0], ["neg", "pos"], [[.9, .1], [.2, .8], [.6, .4], [.7, .3]])
    report |= {"unknown_labels": {"maybe": 2}, "unknown_examples": 2}
    table = report_table(report)
    assert "accuracy         0.7500" in table and "macro-F1         0.7333" in table
    assert "neg       0.6667  1.0000  0.8000        2" in table
    assert "true \\ predicted  neg  pos" in table and "pos                 1    1" in table
    assert "ROC-AUC (probability of 'pos' as the score): 1.0000" in table
    assert "'maybe' x 2" in table and "(2 example(s))" in table
    three = report_table(classification_report([0, 1], [0, 1], ["a", "b", "c"]))
    assert "ROC-AUC" not in three and "no examples of 'c'" in three and "unknown" not in three


def test_confusion_image_shades_rows_and_checks_its_input():
    counts = np.array([[9, 1, 0], [0, 0, 0], [2, 2, 6]])
    picture = confusion_image(counts, ["cat", "a very long class name indeed", "dog"], "a title")
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    assert picture.shape[1] < 600  # a long name is cut, not widening every cell
    gray = picture.astype(int).sum(axis=2)
    assert gray.min() < 3 * 120 and (gray == 3 * 255).mean() > 0.3  # dark cells, white background
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        confusion_image(counts[:2], ["cat", "b", "dog"])
    assert confusion_image(np.zeros((2, 2), int), ["a", "b"]).shape[0] > 0  # no examples: no division by 0


def _dark_pixels(counts) -> int:
    """Pixels of the darkest shade (a cell holding its whole row), text aside."""
    picture = confusion_image(np.array(counts), ["a", "b"], "t").astype(int)
    return int((np.abs(picture - np.array([8, 48, 107])).sum(axis=2) < 10).sum())


def test_confusion_image_shading_is_by_row_share_not_by_count():
    whole_rows = _dark_pixels([[1, 0], [0, 1]])  # two full-share cells
    assert whole_rows > 500
    assert _dark_pixels([[1, 0], [0, 100]]) > 0.8 * whole_rows  # 1 of 1 is as dark as 100 of 100
    assert _dark_pixels([[1, 1], [0, 100]]) < 0.6 * whole_rows  # half a row is mid-blue


# ----------------------------------------------------------------------------- command line



def _write_csv(path: Path, rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream).writerows(rows)
    return path


def _text_model(names, texts=TEXTS) -> TextClassifier:
    model = TextClassifier(names, max_tokens=60, sequence_length=8, embedding_dim=4, units=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the texts cannot be learned from": ten texts are few, and fine here
        model.adapt(texts)
    return model


def _hybrid_model() -> SomRbfAttentionClassifier:
    x = np.random.default_rng(0).random((24, 8, 8, 1), dtype=np.float32)
    model = SomRbfAttentionClassifier(["b", "a", "c"], image_shape=(8, 8, 1), som_grid=(2, 3), rbf_units=5,
                                      attention_units=4)  # not the folder's (sorted) order: matched by name
    model.fit_som(x, steps=2)
    model.adapt_rbf(x)
    return model


def _image_folder(root: Path, classes: dict[str, int], size=(8, 8)) -> Path:
    rng = np.random.default_rng(1)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = (rng.random(size) * 255 * (0.3 + 0.2 * len(name) % 3)).astype(np.uint8)
            Image.fromarray(pixels, "L").save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def w(tmp_path_factory) -> SimpleNamespace:
    """Tiny saved classifiers of each kind, their data, and models that are no classifiers."""
    root = tmp_path_factory.mktemp("eval_classifier")
    keras.utils.set_random_seed(0)
    models = {"text": _text_model(["business", "sports"]),
              "agnews": _text_model(["World", "Sports", "Business", "Sci/Tech"]),
              "hybrid": _hybrid_model(),
              "rbf": RBFNetwork(3, 4, 3, "classification", class_names=["0", "1", "2"]),
              "mnist_rbf": RBFNetwork(784, 4, 10, "classification"),
              "vae": VAE.create((8, 8, 1), 3, 4, 1),
              "plain": keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])}
    models["rbf"].rbf.adapt(np.random.default_rng(2).normal(size=(40, 3)).astype(np.float32), seed=0)
    for name, model in models.items():
        model.save(root / f"{name}.keras")
    labels = ["business", "sports", "business", "sports", "business", "sports", "maybe", "business", "?", "maybe"]
    _write_csv(root / "texts.csv", [["text", "label"], *zip(TEXTS, labels)])
    _write_csv(root / "unknown.csv", [["text", "label"], *zip(TEXTS, ["1", "2"] * 5)])
    (root / "empty.csv").write_text("")
    rng = np.random.default_rng(3)
    features = rng.normal(size=(30, 3)).round(3)
    rbf_labels = [*rng.integers(0, 3, 27), 5, 5, 7]  # 5 and 7: classes the model does not have
    _write_csv(root / "samples.csv", [["x1", "x2", "x3", "y"], *[[*f, y] for f, y in zip(features, rbf_labels)]])
    _write_csv(root / "label_first.csv", [["kind", "a", "b", "c"], *[[y, *f] for f, y in zip(features, rbf_labels)]])
    _write_csv(root / "two_features.csv", [["x1", "x2", "y"], *[[*f[:2], y] for f, y in zip(features, rbf_labels)]])
    _image_folder(root / "images", {"a": 4, "b": 3, "c": 3, "zebra": 2})
    _image_folder(root / "big_images", {"a": 2, "b": 2}, size=(10, 12))
    (root / "flat").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(root / "flat" / "x.png")
    (root / "out").mkdir()
    return SimpleNamespace(root=root, texts=TEXTS, text_labels=labels, features=features.astype(np.float32),
                           rbf_labels=rbf_labels)


def _eval_json(capsys, *argv) -> dict:
    code, out, err = run_main(["eval", *argv, "--json"], capsys)
    assert code == 0, err
    assert err == ""
    return json.loads(out)


def test_text_classifier_json_equals_sklearn_on_its_predictions(w, capsys):
    report = _eval_json(capsys, w.root / "text.keras", "--data", w.root / "texts.csv")
    known = [i for i, label in enumerate(w.text_labels) if label in ("business", "sports")]
    probabilities, _ = zoo.load(w.root / "text.keras", compile=False).predict_proba([w.texts[i] for i in known])
    true = [["business", "sports"].index(w.text_labels[i]) for i in known]
    _assert_matches_sklearn(report, true, probabilities.argmax(axis=1), ["business", "sports"],
                            scores=probabilities[:, 1])
    assert report["unknown_labels"] == {"maybe": 2, "?": 1} and report["unknown_examples"] == 3
    assert report["classifier"] == "TextClassifier" and report["data"] == str(w.root / "texts.csv")


def test_text_classifier_table_and_limit(w, capsys):
    code, out, err = run_main(["eval", w.root / "text.keras", "--data", w.root / "texts.csv", "--limit", "4"], capsys)
    assert code == 0 and err == "", err
    assert out.startswith(f"TextClassifier {w.root / 'text.keras'} on 4 example(s) of ")
    for fragment in ("accuracy", "macro-F1", "precision  recall      F1  support",
                     "confusion matrix (rows: true class, columns: predicted class)", "ROC-AUC"):
        assert fragment in out, fragment
    assert "unknown labels" not in out  # the first 4 rows are all known


def test_text_columns_by_index_and_ag_news_class_names(w, capsys, tmp_path):
    _write_csv(tmp_path / "swapped.csv", [[label, text] for text, label in zip(w.texts, w.text_labels)])
    by_index = _eval_json(capsys, w.root / "text.keras", "--data", tmp_path / "swapped.csv",
                          "--text-column", "1", "--label-column", "0")
    by_name = _eval_json(capsys, w.root / "text.keras", "--data", w.root / "texts.csv")
    assert by_index == {**by_name, "data": str(tmp_path / "swapped.csv")}
    utf16 = tmp_path / "utf16.csv"  # UTF-16 without a byte-order mark: only --encoding can say so
    utf16.write_bytes((w.root / "texts.csv").read_text(encoding="utf-8").encode("utf-16-le"))
    assert _eval_json(capsys, w.root / "text.keras", "--data", utf16, "--encoding", "utf-16-le") == \
        {**by_name, "data": str(utf16)}
    # AG News: labels 1..4 named by the classes.txt beside the file
    report = _eval_json(capsys, w.root / "agnews.keras", "--data", "assets:text/ag_news/test.csv", "--limit", "30")
    assert report["examples"] == 30 and report["unknown_examples"] == 0 and "roc_auc" not in report
    assert sum(map(sum, report["confusion_matrix"])) == 30


def test_hybrid_image_classifier_matches_folder_classes_by_name(w, capsys):
    report = _eval_json(capsys, w.root / "hybrid.keras", "--data", w.root / "images")
    images, ids, names = load_images(str(w.root / "images"), "test", 1)
    model = zoo.load(w.root / "hybrid.keras", compile=False)
    keep = np.array([names[i] != "zebra" for i in ids])
    true = [model.class_names.index(names[i]) for i in ids[keep]]
    probabilities, _ = model.predict_proba(images[keep])
    _assert_matches_sklearn(report, true, probabilities.argmax(axis=1), ["b", "a", "c"])
    assert [report["per_class"][n]["support"] for n in "bac"] == [3, 4, 3]
    assert report["unknown_labels"] == {"zebra": 2} and "roc_auc" not in report


def test_rbf_classifier_on_a_numeric_csv_and_label_column(w, capsys):
    report = _eval_json(capsys, w.root / "rbf.keras", "--data", w.root / "samples.csv")
    known = np.array([y in (0, 1, 2) for y in w.rbf_labels])
    probabilities = zoo.load(w.root / "rbf.keras", compile=False).predict_values(w.features[known])
    true = np.array(w.rbf_labels)[known]
    _assert_matches_sklearn(report, true, probabilities.argmax(axis=1), ["0", "1", "2"])
    assert report["unknown_labels"] == {"5": 2, "7": 1} and report["unknown_examples"] == 3
    by_name = _eval_json(capsys, w.root / "rbf.keras", "--data", w.root / "label_first.csv", "--label-column", "KIND")
    assert {**by_name, "data": report["data"]} == report


def test_rbf_classifier_default_data_is_the_mnist_test_split(w, capsys):
    report = _eval_json(capsys, w.root / "mnist_rbf.keras", "--limit", "25")
    images, labels, _ = load_images("assets:mnist", "test", 1, limit=25)
    probabilities = zoo.load(w.root / "mnist_rbf.keras", compile=False).predict_values(images.reshape(25, -1))
    _assert_matches_sklearn(report, labels, probabilities.argmax(axis=1), [str(i) for i in range(10)])
    assert report["data"] == "assets:mnist" and report["unknown_examples"] == 0


def test_output_draws_the_confusion_matrix(w, capsys):
    out = w.root / "out" / "confusion.png"
    report = _eval_json(capsys, w.root / "hybrid.keras", "--data", w.root / "images", "-o", out)
    picture = np.asarray(Image.open(io.BytesIO(out.read_bytes())))
    title = (f"SomRbfAttentionClassifier on {w.root / 'images'}: 10 examples, accuracy "
             f"{report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}")
    expected = confusion_image(np.array(report["confusion_matrix"]), ["b", "a", "c"], title)
    np.testing.assert_array_equal(picture, expected)
    assert sorted(p.name for p in out.parent.iterdir()) == ["confusion.png"]  # no temporary left


def test_data_without_examples_is_a_user_error(w, capsys, monkeypatch):
    """A source that reads fine but holds nothing (e.g. an empty TFDS split) is named, not a crash."""
    import zoo.data.text

    monkeypatch.setattr(zoo.data.text, "load_labelled_texts", lambda *args: ([], []))
    code, out, err = run_main(["eval", w.root / "text.keras", "--data", "tfds:nothing"], capsys)
    assert (code, out) == (2, "") and err == "error: --data tfds:nothing holds no labelled examples: " \
        "pass a file or folder with some\n"


ERRORS = {  # name: (argv after "eval", fragments of the one error line)
    "text: no --data": (lambda w: [w.root / "text.keras"], ["needs --data", "assets:text/ag_news/test.csv"]),
    "text: wrong text column": (lambda w: [w.root / "text.keras", "--data", w.root / "texts.csv", "--text-column",
                                           "body"], ["'body'", "0: 'text', 1: 'label'"]),
    "text: wrong label column": (lambda w: [w.root / "text.keras", "--data", w.root / "texts.csv", "--label-column",
                                            "7"], ["label column 7", "2 column(s)"]),
    "text: empty file": (lambda w: [w.root / "text.keras", "--data", w.root / "empty.csv"], ["empty.csv", "empty"]),
    "text: labels all unknown": (lambda w: [w.root / "text.keras", "--data", w.root / "unknown.csv"],
                                 ["none of the 10 example(s)", "'business', 'sports'", "'1', '2'"]),
    "text: a folder": (lambda w: [w.root / "text.keras", "--data", w.root / "images"], ["is a folder", "CSV"]),
    "hybrid: wrong image size": (lambda w: [w.root / "hybrid.keras", "--data", w.root / "big_images"],
                                 ["12x10", "classifies 8x8 images"]),
    "hybrid: unlabelled images": (lambda w: [w.root / "hybrid.keras", "--data", w.root / "flat"], ["no labels"]),
    "hybrid: a CSV": (lambda w: [w.root / "hybrid.keras", "--data", w.root / "texts.csv"],
                      ["texts.csv", "not an image source"]),
    "rbf: wrong label column": (lambda w: [w.root / "rbf.keras", "--data", w.root / "samples.csv", "--label-column",
                                           "target"], ["'target'", "0: 'x1'", "3: 'y'"]),
    "rbf: too few features": (lambda w: [w.root / "rbf.keras", "--data", w.root / "two_features.csv"],
                              ["gives 2 feature columns", "takes 3"]),
    "rbf: images for a CSV model": (lambda w: [w.root / "rbf.keras"], ["assets:mnist", "784 gray pixels", "takes 3"]),
    "rbf: a text table": (lambda w: [w.root / "rbf.keras", "--data", w.root / "texts.csv"],
                          ["'stocks fall as oil prices rise' is not a finite number"]),
    "limit 0": (lambda w: [w.root / "rbf.keras", "--data", w.root / "samples.csv", "--limit", "0"], ["--limit"]),
    "VAE given text data": (lambda w: [w.root / "vae.keras", "--data", w.root / "texts.csv"],
                            ["texts.csv", "not an image source"]),
    "not evaluable": (lambda w: [w.root / "plain.keras", "--data", w.root / "texts.csv"],
                      ["(Sequential) cannot be evaluated", "a text classifier", "an image classifier",
                       "an RBF network trained with --task classify"]),
    "-o for a VAE": (lambda w: [w.root / "vae.keras", "-o", w.root / "out" / "vae.png"],
                     ["-o", "vae.png", "confusion matrix", "drop -o"]),
    "-o unknown format": (lambda w: [w.root / "text.keras", "--data", w.root / "texts.csv", "-o",
                                     w.root / "out" / "cm.xyz"], ["cm.xyz", "unknown image format"]),
    "-o missing folder": (lambda w: [w.root / "text.keras", "--data", w.root / "texts.csv", "-o",
                                     w.root / "nodir" / "cm.png"], ["nodir", "does not exist"]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_user_errors(w, capsys, case):
    make_argv, fragments = ERRORS[case]
    argv = [str(a) for a in make_argv(w)]
    if "-o" not in argv and Path(argv[0]).stem in ("text", "hybrid", "rbf"):
        argv += ["-o", str(w.root / "out" / "never.png")]  # a classifier's picture: not written either
    before = sorted(p.name for p in (w.root / "out").iterdir())
    assert_main_user_error(["eval", *argv], capsys, *fragments)
    assert sorted(p.name for p in (w.root / "out").iterdir()) == before, "nothing written"
