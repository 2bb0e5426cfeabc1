"""Text in any language through the text recipes, the models, `zoo predict` and the explainers:
Chinese read per character (with token pairs), the `auto` choices printed, a degenerate
reading warned about, a model that predicts one class flagged."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import check_train_step, run_here

from train.callbacks import OneClassAlarm
from train.recipes.lstm_classifier import PRESETS, build
from zoo.explain.text import explain_texts
from zoo.models import TextClassifier, TransformerTextClassifier

GOOD = ["菜很好吃，送餐也很快，下次还点", "味道不错，分量很足，推荐！", "服务很好，包装精美，好评", "很新鲜，好吃，还会再买"]
BAD = ["太难吃了，等了两个小时，再也不点了", "送餐太慢，菜都凉了，差评", "味道很差，不新鲜，失望", "包装破了，汤洒了，很差"]
LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0], np.int32)


def chinese_model(cls=TextClassifier, **kwargs):
    size = {"units": 4} if cls is TextClassifier else {"num_heads": 2, "ff_dim": 8, "num_layers": 1}
    model = cls(["差评", "好评"], max_tokens=100, sequence_length=24, embedding_dim=8, bigrams=True, **size, **kwargs)
    model.adapt(GOOD + BAD)
    model.compile(keras.optimizers.Adam(0.05))
    return model


@pytest.mark.parametrize("cls", [TextClassifier, TransformerTextClassifier])
def test_chinese_model_reads_characters_with_pairs_and_round_trips(cls, tmp_path):
    model = chinese_model(cls)
    assert model.tokens(["iPhone太好用了！"]) == [["iphone", "太", "好", "用", "了"]]
    vocabulary = model.bigram_lookup.get_vocabulary()
    assert "很 好" in vocabulary and "好 吃" in vocabulary
    check_train_step(model, [(tf.constant(GOOD + BAD), LABELS)])  # the pair embeddings train too
    x, mask = model.embed(tf.constant(["好吃"]))  # the last token has no pair: its own embedding only
    single = model.embedding(model.lookup(tf.constant([["吃"]])))[0, 0]
    np.testing.assert_allclose(x[0, 1], single, rtol=1e-6)
    assert mask.numpy()[0].tolist() == [True, True] + [False] * 22
    path = tmp_path / "zh.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.token_split == "chars" and loaded.bigrams
    np.testing.assert_allclose(loaded.predict_proba(GOOD)[0], model.predict_proba(GOOD)[0], atol=1e-6)


def test_two_chinese_reviews_get_different_predictions_and_per_character_attention():
    model = chinese_model()
    model.fit(tf.data.Dataset.from_tensor_slices((GOOD + BAD, LABELS)).batch(8).repeat(), steps_per_epoch=40,
              epochs=1, verbose=0)
    good, bad = model.predict_texts(["菜很好吃，送餐也很快", "太难吃了，再也不点了"], top_words=3)
    assert good["label"] == "好评" and bad["label"] == "差评"
    assert all(len(word) == 1 for word, _ in good["attention"] + bad["attention"])


def test_explainers_work_per_character():
    model = chinese_model()
    report = explain_texts(model, ["菜很好吃，送餐也很快"], ["attention", "lime", "ig"], samples=200)
    entry = report["explanations"][0]
    assert entry["words"] == list("菜很好吃送餐也很快")
    assert set(entry["lime"]["word_weights"]) == set("菜很好吃送餐也快")  # LIME removes characters
    assert len(entry["ig"]["attributions"]) == len(entry["attention"]["weights"]) == 9


def test_recipe_prints_its_choices_for_chinese(tmp_path, capsys):
    rows = "label,review\n" + "".join(f"{label},{text}\n" for text, label in zip(GOOD + BAD, LABELS)) * 10
    (tmp_path / "zh.csv").write_text(rows, encoding="utf-8")
    config = dataclasses.replace(PRESETS["tiny"], data=str(tmp_path / "zh.csv"), limit=0, sequence_length=0)
    built = build(config)
    out = capsys.readouterr()
    assert "tokens chars (" in out.out and "Han" in out.out and "token pairs (bigrams) on" in out.out
    assert "sequence length 64 (95% of the training texts have at most 15 tokens" in out.out
    assert built.model.token_split == "chars" and built.model.sequence_length == 64
    assert "WARNING" not in out.err


def test_recipe_warns_when_chinese_is_split_at_spaces(tmp_path, capsys):
    texts = [f"{g}{i}号店" for i, g in enumerate(GOOD * 10)] + [f"{b}{i}号店" for i, b in enumerate(BAD * 10)]
    rows = "label,review\n" + "".join(f"{i // 40},{t}\n" for i, t in enumerate(texts))
    (tmp_path / "zh.csv").write_text(rows, encoding="utf-8")
    build(dataclasses.replace(PRESETS["tiny"], data=str(tmp_path / "zh.csv"), limit=0, tokens="words"))
    err = capsys.readouterr().err
    assert "WARNING: the texts cannot be learned from as tokens" in err and "--tokens chars" in err


def test_predict_cli_on_a_chinese_model(tmp_path):
    model = chinese_model()
    model.save(tmp_path / "zh.keras")
    result = run_here(["zoo", "predict", str(tmp_path / "zh.keras"), "菜很好吃，送餐也很快", "--json"])
    assert result.returncode == 0, result.stderr
    prediction = json.loads(result.stdout)["predictions"][0]
    assert prediction["input"] == "菜很好吃，送餐也很快" and set(prediction["probabilities"]) == {"差评", "好评"}
    assert {w for w, _ in prediction["attention"]} <= set("菜很好吃送餐也快") and len(prediction["attention"]) == 5
    lines = tmp_path / "big5.txt"  # a Taiwanese user's file, saved in Big5: found, and read as such
    lines.write_bytes("菜很好吃，送餐也很快\n服務很好\n".encode("big5"))
    result = run_here(["zoo", "predict", str(tmp_path / "zh.keras"), "--file", str(lines), "--json"])
    assert result.returncode == 0, result.stderr
    assert [p["input"] for p in json.loads(result.stdout)["predictions"]] == ["菜很好吃，送餐也很快", "服務很好"]


class Fixed:
    """Stands in for a model: `OneClassAlarm` only passes it to `predict`."""


@pytest.mark.parametrize("true, predicted, alarm", [
    ([0, 1, 1, 0] * 25, [1] * 100, True),  # one class for everything, half the labels
    ([0, 1, 1, 0] * 25, [1] * 99 + [0], True),
    ([0, 1, 1, 0] * 25, [1] * 90 + [0] * 10, False),  # spread enough
    ([1] * 99 + [0], [1] * 100, False),  # the labels are (nearly) all that class: nothing learned is shown
])
def test_one_class_alarm(true, predicted, alarm, capsys):
    callback = OneClassAlarm(lambda model: (np.array(true), np.array(predicted)), ["neg", "pos"], "zh")
    callback.set_model(Fixed())
    callback.on_train_end()
    err = capsys.readouterr().err
    assert ("zh: WARNING: the model predicts 'pos'" in err) == alarm, err
