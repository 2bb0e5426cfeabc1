"""zoo.explain.text (LIME against the lime package, integrated gradients' completeness, attention,
the deletion test) and `python -m zoo explain` on text classifiers, its dispatch and bad inputs."""

import json
import re
import sys
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_user_error, run_here
from PIL import Image

from zoo.__main__ import main
from zoo.explain.text import deletion_test, explain_texts, integrated_gradients, lime_text, word_ranking
from zoo.models import RBFNetwork, SOM, TextClassifier, TransformerTextClassifier

TEXTS = ["stocks fall as oil prices rise", "the team won the final match", "shares and profits up",
         "striker scores twice in the cup", "bank profit doubles again", "goalkeeper saves a penalty"]
LABELS = np.array([0, 1, 0, 1, 0, 1], np.int32)
WEIGHTS = {"oil": 0.2, "stocks": 0.1, "cup": -0.25, "match": -0.05, "bank": 0.15}  # the known linear model


class LinearWords:
    """P(class 1) = 0.5 + the summed WEIGHTS of the distinct words present: a known linear text model."""

    class_names = ["a", "b"]

    @staticmethod
    def tokens(texts):
        return [re.findall(r"\w+", t.lower()) for t in texts]

    def predict_proba(self, texts):
        p = np.array([0.5 + sum(WEIGHTS.get(w, 0.0) for w in set(words)) for words in self.tokens(texts)])
        return np.stack([1 - p, p], 1), None


LINEAR = LinearWords()
SENTENCE = "oil and stocks fall as the bank sees a cup match and oil again today with more words here"


def trained(model):
    model.adapt(TEXTS)
    model.compile(keras.optimizers.Adam(0.02))
    model.fit(tf.data.Dataset.from_tensor_slices((TEXTS, LABELS)).batch(6), epochs=15, verbose=0, shuffle=False)
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny BiLSTM and a tiny Transformer classifier, fitted a little and saved: {kind: (model, path)}."""
    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    made = {"lstm": trained(TextClassifier(["business", "sports"], max_tokens=50, sequence_length=8,
                                           embedding_dim=4, units=3)),
            "transformer": trained(TransformerTextClassifier(["business", "sports"], max_tokens=50,
                                                             sequence_length=8, embedding_dim=8, num_layers=1,
                                                             num_heads=2, ff_dim=8))}
    result = {}
    for kind, model in made.items():
        model.save(folder / f"{kind}.keras")
        result[kind] = (model, str(folder / f"{kind}.keras"))
    return result


# ----------------------------------------------------------------------------- LIME

@pytest.mark.parametrize("num_features", [10, 3])  # "auto": highest weights, then forward selection
def test_lime_equals_the_lime_package(num_features):
    """Same seed, same copies: the weights, intercept, R^2 and local prediction of LimeTextExplainer."""
    from lime.lime_text import LimeTextExplainer  # the reference (the `test` extra installs it)

    proba = lambda texts: LINEAR.predict_proba(texts)[0]  # noqa: E731
    reference = LimeTextExplainer(random_state=7).explain_instance(SENTENCE, proba, labels=(1,),
                                                                   num_features=num_features, num_samples=400)
    ours = lime_text(LINEAR.tokens([SENTENCE])[0], proba, 1, samples=400, seed=7, num_features=num_features)
    assert ours.words == list(dict.fromkeys(SENTENCE.split()))  # lime's features: distinct words in order
    expected = dict(reference.local_exp[1])
    assert sorted(expected) == sorted(ours.selected) and len(ours.selected) == num_features
    np.testing.assert_allclose([expected.get(j, 0.0) for j in range(len(ours.words))], ours.weights, atol=1e-9)
    assert ours.intercept == pytest.approx(reference.intercept[1], abs=1e-9)
    assert ours.score == pytest.approx(reference.score, abs=1e-9)
    assert ours.local_prediction == pytest.approx(float(reference.local_pred[0]), abs=1e-9)


def test_lime_recovers_the_weights_of_a_known_linear_model():
    proba = lambda texts: LINEAR.predict_proba(texts)[0]  # noqa: E731
    words = LINEAR.tokens([SENTENCE])[0]
    result = lime_text(words, proba, 1, samples=1000, seed=3, feature_selection="none")
    found = dict(zip(result.words, result.weights))
    for word in result.words:
        assert found[word] == pytest.approx(WEIGHTS.get(word, 0.0), abs=0.01), word
    assert result.score > 0.99
    for_class_0 = lime_text(words, proba, 0, samples=1000, seed=3, feature_selection="none")
    np.testing.assert_allclose(for_class_0.weights, -result.weights, atol=1e-9)
    again = lime_text(words, proba, 1, samples=1000, seed=3, feature_selection="none")
    np.testing.assert_array_equal(again.weights, result.weights)  # the seed fixes every copy
    other = lime_text(words, proba, 1, samples=1000, seed=4, feature_selection="none")
    assert not np.array_equal(other.weights, result.weights)


def test_shap_equals_the_shap_package_on_the_text_models(models):
    """Kernel SHAP of the tiny BiLSTM, players the 8 distinct words, background all removed:
    exact enumeration here and in shap.KernelExplainer (nsamples 254 = 2^8 - 2), the same model
    function; 1e-5 because the two score the coalitions in other batches (float32 rounding)."""
    import shap  # the reference (the `test` extra installs it)

    from zoo.explain.text import remove_words, shap_text

    model, _ = models["lstm"]
    words = model.tokens(["oil prices and the cup match as stocks"])[0]
    vocabulary = list(dict.fromkeys(words))

    def probability(masks):  # coalition -> text -> P(class 1): the same function for both
        kept = [remove_words(words, [w for w, on in zip(vocabulary, mask) if not on]) for mask in masks]
        return model.predict_proba(kept)[0][:, 1].astype(np.float64)

    found, ours = shap_text(words, lambda texts: model.predict_proba(texts)[0], 1, samples=300, seed=0)
    assert found == vocabulary and len(vocabulary) == 8 and ours.exact and ours.coalitions == 254
    np.random.seed(0)
    reference = shap.KernelExplainer(probability, np.zeros((1, 8))).shap_values(
        np.ones((1, 8)), nsamples=300, l1_reg=False, silent=True)
    np.testing.assert_allclose(ours.values, np.asarray(reference).reshape(-1), atol=1e-5, rtol=0)
    whole, empty = model.predict_proba([" ".join(words), ""])[0][:, 1]
    assert ours.prediction == pytest.approx(whole, abs=1e-6) and ours.background == pytest.approx(empty, abs=1e-6)
    assert ours.efficiency_error < 1e-6


# ----------------------------------------------------------------------------- IG, attention, deletion

@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_integrated_gradients_sum_to_the_difference_from_the_baseline(models, kind):
    model, _ = models[kind]
    texts = ["oil prices and the cup match", "the team won again"]
    probabilities = model.predict_proba(texts)[0]
    labels = probabilities.argmax(-1)
    x, mask = model.embed(tf.constant(texts))
    baseline = tf.nn.softmax(model.classify_embeddings(tf.zeros_like(x), mask)[0]).numpy()
    for i, ig in enumerate(integrated_gradients(model, texts, labels, steps=300)):
        difference = probabilities[i, labels[i]] - baseline[i, labels[i]]
        assert ig.prediction == pytest.approx(probabilities[i, labels[i]], abs=1e-5)
        assert ig.baseline == pytest.approx(baseline[i, labels[i]], abs=1e-5)
        assert ig.attributions.sum() == pytest.approx(difference, abs=2e-3)
        assert ig.completeness_error == pytest.approx(abs(ig.attributions.sum() - difference), abs=1e-5)
        assert np.all(ig.attributions[~mask.numpy()[i]] == 0)  # padding carries nothing
    coarse = integrated_gradients(model, texts[:1], labels[:1], steps=2)[0]
    fine = integrated_gradients(model, texts[:1], labels[:1], steps=300)[0]
    assert coarse.completeness_error > fine.completeness_error


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_attention_shown_is_the_models_and_sums_to_one(models, kind):
    model, _ = models[kind]
    texts = ["oil oil prices", "one two three four five six seven eight nine ten"]
    report = explain_texts(model, texts, ["attention"])
    _, attention = model.predict_proba(texts)
    assert report["methods"] == ["attention"]
    for i, entry in enumerate(report["explanations"]):
        shown = entry["attention"]["weights"]
        assert entry["words"] == model.tokens(texts)[i] and len(shown) == len(entry["words"])
        np.testing.assert_array_equal(shown, attention[i, :len(shown)])
        assert sum(shown) == pytest.approx(1.0, abs=1e-5)
        assert "lime" not in entry and "ig" not in entry
    assert dict(report["explanations"][0]["attention"]["top"])["oil"] == pytest.approx(sum(attention[0, :2]), abs=1e-5)


def test_deletion_test_removes_the_ranked_words_against_the_same_random_ones():
    words = LINEAR.tokens(["oil stocks cup the a", "bank match oil"])
    rankings = [word_ranking(w, [WEIGHTS.get(x, 0.0) for x in w]) for w in words]
    assert rankings[0][:2] == ["oil", "stocks"] and rankings[0][-1] == "cup"
    drops = deletion_test(LINEAR, words, rankings, ks=(1, 2), seed=0, draws=20)
    np.testing.assert_allclose(drops[1]["top"], [0.2, 0.2])  # the heaviest word of each text: oil
    np.testing.assert_allclose(drops[2]["top"], [0.3, 0.35])
    assert np.all(drops[1]["random"] < drops[1]["top"]) and np.all(drops[2]["random"] < drops[2]["top"])
    reversed_ = deletion_test(LINEAR, words, [r[::-1] for r in rankings], ks=(1, 2), seed=0, draws=20)
    np.testing.assert_array_equal(reversed_[1]["random"], drops[1]["random"])  # same seed: same random words
    np.testing.assert_allclose(reversed_[1]["top"], [-0.25, -0.05])


def test_signed_words_are_red_for_and_blue_against_and_files_are_written_all_or_none(tmp_path):
    from zoo.explain.render import signed_word_image, write_all

    image = signed_word_image([("for", 0.5), ("against", -0.5), ("none", 0.0)]).astype(int)
    red = (image[..., 0] > 200) & (image[..., 1] < 60) & (image[..., 2] < 60)
    blue = (image[..., 2] > 200) & (image[..., 0] < 60) & (image[..., 1] < 110)
    assert red.sum() > 100 and blue.sum() > 100
    with pytest.raises(OSError):
        write_all({tmp_path / "a.html": b"page", tmp_path / "missing" / "a.png": b"png"})
    assert not list(tmp_path.iterdir())  # the first file was not left behind
    write_all({tmp_path / "a.html": b"page", tmp_path / "a.png": b"png"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "a.png"]
    assert (tmp_path / "a.html").read_bytes() == b"page"


# ----------------------------------------------------------------------------- command line

def explain(capsys, *argv):
    code = main(["explain", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_cli_writes_page_picture_and_reproducible_json(models, kind, tmp_path, capsys):
    _, path = models[kind]
    texts = ["Oil prices and the cup match!", "the team won again"]
    code, out, err = explain(capsys, path, *texts, "-o", tmp_path / "a.html", "--json", "--seed", 3,
                             "--samples", 300, "--steps", 40, "--top", 3)
    assert code == 0, err
    report = json.loads(out)
    assert report["methods"] == ["attention", "lime", "ig"] and report["seed"] == 3
    assert report["outputs"] == {"html": str(tmp_path / "a.html"), "png": str(tmp_path / "a.png")}
    first = report["explanations"][0]
    assert first["input"] == texts[0] and first["words"] == ["oil", "prices", "and", "the", "cup", "match"]
    assert first["label"] in ("business", "sports")
    assert sum(first["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert len(first["lime"]["weights"]) == 6 and first["lime"]["samples"] == 300 and len(first["lime"]["top"]) == 3
    assert first["ig"]["steps"] == 40 and first["ig"]["completeness_error"] >= 0
    assert first["attention"]["sum"] == pytest.approx(1, abs=1e-5)
    page = (tmp_path / "a.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "<style>" in page and "Oil prices and the cup match!" in page
    assert Image.open(tmp_path / "a.png").size[0] == 640
    assert not list(tmp_path.glob(".*"))  # no temporary file left
    code, again, _ = explain(capsys, path, "-o", tmp_path / "b", "--json", "--seed", 3, "--samples", 300,
                             "--steps", 40, "--top", 3, *texts)  # inputs after the flags
    assert code == 0 and {**json.loads(again), "outputs": None} == {**report, "outputs": None}
    code, other, _ = explain(capsys, path, texts[0], "-o", tmp_path / "c", "--json", "--seed", 4,
                             "--samples", 300, "--method", "lime")
    assert code == 0 and json.loads(other)["methods"] == ["lime"]
    assert json.loads(other)["explanations"][0]["lime"]["weights"] != first["lime"]["weights"]
    code, out, err = explain(capsys, path, texts[0], "-o", tmp_path / "d", "--json", "--samples", 100,
                             "--method", "shap,lime")
    assert code == 0, err
    shap = json.loads(out)["explanations"][0]["shap"]
    assert json.loads(out)["methods"] == ["shap", "lime"] and shap["exact"]  # 6 words: 62 coalitions
    assert shap["sum"] == pytest.approx(shap["prediction"] - shap["background_prediction"], abs=1e-6)
    assert len(shap["values"]) == 6 and set(shap["word_values"]) == set(first["words"])
    assert "SHAP value" in (tmp_path / "d.html").read_text(encoding="utf-8")


def test_cli_lines_and_file_input(models, tmp_path, capsys):
    _, path = models["lstm"]
    (tmp_path / "texts.txt").write_text("oil prices rise\n\nthe cup final\n")
    code, out, err = explain(capsys, path, "--file", tmp_path / "texts.txt", "-o", tmp_path / "out.png",
                             "--samples", 100, "--steps", 10, "--method", "attention,ig", "--top", 2, "cup " * 500)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 10 and lines[0].split("  ")[1].startswith("cup cup")  # the INPUT, then the file's
    assert re.match(r"^(business|sports) \d\.\d{3}  oil prices rise$", lines[3])
    assert lines[4].startswith("  attention: ") and lines[5].startswith("  ig (completeness error ")
    assert lines[6].endswith("the cup final")
    assert lines[-1] == f"wrote {tmp_path / 'out.html'} and {tmp_path / 'out.png'}"
    code, out, err = explain(capsys, path, "oil prices rise", "-o", tmp_path / "s", "--method", "shap", "--top", 2)
    assert code == 0 and out.splitlines()[1].startswith("  shap (efficiency error ") and "exact)" in out
    assert (tmp_path / "out.html").is_file() and (tmp_path / "out.png").is_file()


@pytest.fixture(scope="module")
def other_models(tmp_path_factory):
    """A tiny SOM and a tiny RBF network, saved: models `explain` cannot explain."""
    folder = tmp_path_factory.mktemp("others")
    x = np.random.default_rng(0).random((20, 3)).astype("float32")
    som = SOM(2, 2, decay_steps=10)
    som.initialize(x, "pca")
    som.save(folder / "som.keras")
    rbf = RBFNetwork(3, 4, 1)
    rbf.rbf.adapt(x)
    rbf.save(folder / "rbf.keras")
    return {"som": str(folder / "som.keras"), "rbf": str(folder / "rbf.keras")}


@pytest.mark.parametrize("kind, name", [("som", "SOM"), ("rbf", "RBFNetwork")])
def test_models_it_cannot_explain(other_models, kind, name, tmp_path, capsys):
    code, out, err = explain(capsys, other_models[kind], "some text", "-o", tmp_path / "x")
    assert code == 2 and out == ""
    assert err.startswith(f"error: model {other_models[kind]} ({name}) cannot be explained: ")
    assert "text classifier" in err
    code, _, err = explain(capsys, other_models[kind], "--embed", "", "-o", tmp_path / "x")
    assert code == 2 and "cannot be embedded" in err
    assert not list(tmp_path.iterdir())


def test_bad_requests_write_nothing(models, tmp_path, capsys):
    _, path = models["lstm"]
    cases = [(["", "-o", tmp_path / "x"], "input 1 ('') has no words the model reads"),
             (["good text", "?!", "-o", tmp_path / "x"], "input 2 ('?!') has no words"),
             (["-o", tmp_path / "x"], "nothing to explain"),
             (["text", "-o", tmp_path / "x", "--method", "lime,kernel"], "unknown --method 'kernel'"),
             (["text", "-o", tmp_path / "x", "--samples", "1"], "--samples must be at least 10"),
             (["text", "-o", tmp_path / "missing" / "x"], "output folder"),
             (["text", "-o", tmp_path / "x", "--embed", ""], "--embed plots a data set"),
             (["text", "-o", tmp_path / "x", "--file", tmp_path / "none.txt"], "does not exist")]
    for argv, message in cases:
        code, out, err = explain(capsys, path, *argv)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
    assert not list(tmp_path.iterdir())


def test_empty_text_exits_2_without_traceback(models, tmp_path):
    result = run_here(["zoo", "explain", models["lstm"][1], "", "-o", str(tmp_path / "x")])
    assert_user_error(result, "has no words the model reads", "pass texts with words")
    assert not list(tmp_path.iterdir())


def test_image_models_and_embed_go_to_their_modules(models, other_models, tmp_path, capsys, monkeypatch):
    """The agreed signatures: explain_images(model, paths, out, seed=, steps=, methods=, samples=,
    segmentation=) and embed(model, data, out, seed=, limit=, encoding=), reached for models their can_* accepts."""
    calls = []
    image = types.ModuleType("zoo.explain.image")
    image.can_explain = lambda model: isinstance(model, SOM)
    image.explain_images = lambda model, paths, out, seed, steps, methods, samples, segmentation: calls.append(
        ("image", type(model).__name__, paths, out, seed, steps, methods, samples, segmentation)) or {
        "kind": "classifier", "outputs": {}, "images": []}
    embed = types.ModuleType("zoo.explain.embed")
    embed.can_embed = lambda model: isinstance(model, SOM)
    embed.embed = lambda model, data, out, seed, limit, encoding: calls.append(
        ("embed", type(model).__name__, data, out, seed, limit, encoding)) or {"kind": "classifier", "outputs": {}}
    monkeypatch.setitem(sys.modules, "zoo.explain.image", image)
    monkeypatch.setitem(sys.modules, "zoo.explain.embed", embed)
    assert explain(capsys, other_models["som"], "a.png", "b.png", "-o", tmp_path / "o.html", "--steps", 7,
                   "--seed", 2, "--method", "ig,occlusion")[0] == 0
    assert explain(capsys, other_models["som"], "--embed", "", "-o", tmp_path / "e", "--limit", 30, "--json")[0] == 0
    assert calls == [("image", "SOM", ["a.png", "b.png"], tmp_path / "o", 2, 7, ["ig", "occlusion"], 5000, "auto"),
                     ("embed", "SOM", "", tmp_path / "e", 0, 30, "auto")]
    assert explain(capsys, other_models["rbf"], "a.png", "-o", tmp_path / "o")[0] == 2
    embed.can_embed = lambda model: True  # a text model's embedding report prints as one line too
    embed.embed = lambda model, data, out, seed, limit, encoding: {"kind": "text", "outputs": {"png": f"{out}.png"}}
    code, out, _ = explain(capsys, models["lstm"][1], "--embed", "assets:x", "-o", tmp_path / "t")
    assert code == 0 and out == f"wrote {tmp_path / 't.png'}\n"
