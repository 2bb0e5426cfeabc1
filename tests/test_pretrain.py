"""Masked-token pre-training (zoo.models.MaskedTokenModel, `python -m train transformer_pretrain`)
and a classifier that starts from it (`transformer_classifier --pretrained RUN`), in any language."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_main_user_error

import train.__main__ as train_cli
from train.recipes._text import labelled_sample, usage_example
from zoo.data.text import load_unlabelled_texts
from zoo.errors import UserError
from zoo.models import TransformerTextClassifier
from zoo.models.masked_lm import FIRST_WORD, MASK, MASK_ID, MaskedTokenModel

ENGLISH = ["stocks fall as oil prices rise", "the team won the final match", "shares and profits up again",
           "striker scores twice in the cup final", "bank profit doubles as oil prices fall"]
pytestmark = pytest.mark.filterwarnings("ignore:the texts cannot be learned")  # a handful of toy texts
CHINESE = ["这本书很好看，推荐大家买", "物流太慢了，包装也破了", "质量不错，价格便宜", "屏幕很清楚，电池也耐用"]


def small_model(texts, **kwargs) -> MaskedTokenModel:
    settings = {"max_tokens": 40, "sequence_length": 12, "embedding_dim": 8, "num_heads": 2, "ff_dim": 16, **kwargs}
    model = MaskedTokenModel(**settings)
    model.adapt(texts)
    model.compile(keras.optimizers.Adam(0.01))
    return model


def test_vocabulary_reserves_mask_and_the_tokenizer_never_makes_it():
    model = small_model(ENGLISH + ["[MASK] is not a word here"])
    assert model.vocabulary()[:3] == ["", "[UNK]", MASK] and len(model.vocabulary()) <= 40
    assert "[mask]" not in model.vocabulary() and "mask" in model.vocabulary()


def test_masking_follows_bert():
    """15% of each text's known tokens (at least 1; never padding or [UNK]) chosen uniformly;
    80% of them become [MASK], 10% a random known token, 10% stay; nothing else changes."""
    model = MaskedTokenModel(max_tokens=1000, sequence_length=40, embedding_dim=8, num_heads=2, ff_dim=8)
    model.backbone.lookup.set_vocabulary([MASK] + [f"w{i}" for i in range(997)])
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 41, 2048)
    ids = np.zeros((2048, 40), np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(FIRST_WORD, 1000, length)
    ids[:, 0] = 1  # [UNK]: never chosen
    inputs, positions, targets, weights = (t.numpy() for t in model.choose(tf.constant(ids), tf.constant([5, 0])))
    known = (ids >= FIRST_WORD).sum(1)
    expected = np.where(known > 0, np.maximum(np.round(0.15 * known), 1), 0)
    np.testing.assert_array_equal(weights.sum(1), expected)
    assert positions.shape == (2048, 6)  # ceil(0.15 x 40)
    chosen = positions[weights > 0]
    rows = np.nonzero(weights > 0)[0]
    assert (ids[rows, chosen] >= FIRST_WORD).all()
    np.testing.assert_array_equal(targets[weights > 0], ids[rows, chosen])
    assert len(set(zip(rows, chosen))) == len(rows)  # no position twice
    untouched = np.ones_like(ids, bool)
    untouched[rows, chosen] = False
    np.testing.assert_array_equal(inputs[untouched], ids[untouched])
    new = inputs[rows, chosen]
    masked, kept = np.mean(new == MASK_ID), np.mean(new == ids[rows, chosen])
    assert len(new) > 6000 and abs(masked - 0.8) < 0.025 and abs(kept - 0.1 - 0.1 / 997) < 0.02
    assert new.min() >= FIRST_WORD - 1 and new.max() < 1000
    first_positions = np.bincount(chosen[np.isin(rows, np.flatnonzero(lengths == 40))], minlength=40)
    assert first_positions[0] == 0 and first_positions[1:].min() > 0  # uniform over known tokens
    again = model.choose(tf.constant(ids), tf.constant([5, 0]))[0].numpy()
    other = model.choose(tf.constant(ids), tf.constant([6, 0]))[0].numpy()
    assert np.array_equal(again, inputs) and not np.array_equal(other, inputs)


def test_token_pairs_never_give_a_chosen_token_away():
    """With bigrams on, the embeddings fed to the encoder do not depend on a chosen token."""
    model = small_model(CHINESE, tokens="chars", bigrams=True)
    texts = tf.constant(["这本书很好看推荐大家买"])
    tokens = model.backbone._tokens(texts)
    ids = model.backbone.lookup(tokens)
    inputs, positions, targets, weights = model.choose(ids, tf.constant([1, 0]))
    position = int(positions[0, 0])
    x = model.masked_embeddings(tokens, inputs, positions, weights)
    changed = tokens.numpy().astype(object)
    changed[0, position] = "质".encode()
    y = model.masked_embeddings(tf.constant(changed), inputs, positions, weights)
    np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert not np.array_equal(model.backbone.embed(texts)[0].numpy(), x.numpy())


def test_train_step_learns_saves_and_hands_the_encoder_to_a_classifier(tmp_path):
    model = small_model(ENGLISH * 4, tokens="words")
    batch = tf.constant(ENGLISH * 4)
    unused = {id(v) for v in model.backbone.pooling.trainable_variables + model.backbone.classifier.trainable_variables}
    before = [np.array(v) for v in model.trainable_variables]
    first = float(model.test_step(batch)["loss"])  # the same masks every time
    step = tf.function(model.train_step)
    for _ in range(150):
        step(batch)
    model.loss_tracker.reset_state()
    assert float(model.test_step(batch)["loss"]) < 0.5 * first
    assert all(not np.array_equal(np.array(v), b) for v, b in zip(model.trainable_variables, before))
    assert all(id(v) not in unused for v in model.trainable_variables)
    model.save(tmp_path / "pre.keras")
    loaded = keras.saving.load_model(tmp_path / "pre.keras")
    np.testing.assert_allclose(loaded(batch), model(batch), atol=1e-6)
    assert loaded.vocabulary() == model.vocabulary()
    classifier = TransformerTextClassifier(["a", "b"], **loaded.backbone.encoder_settings())
    classifier.start_from(loaded)
    assert classifier.vocabulary() == model.vocabulary()
    np.testing.assert_allclose(classifier._encode(*classifier.embed(batch)), model(batch), atol=1e-6)
    with pytest.raises(ValueError, match="embedding_dim: 16 here, 8 pre-trained"):
        TransformerTextClassifier(["a", "b"], **{**loaded.backbone.encoder_settings(), "embedding_dim": 16,
                                                 "num_heads": 2}).start_from(loaded)


def test_unlabelled_texts_from_text_files_and_tables(tmp_path):
    (tmp_path / "zh.txt").write_text("\n".join(CHINESE) + "\n\n", encoding="utf-8")
    assert load_unlabelled_texts(str(tmp_path / "zh.txt")) == CHINESE
    (tmp_path / "t.csv").write_text("label,review\n1,good one\n0,bad one\n", encoding="utf-8")
    assert load_unlabelled_texts(str(tmp_path / "t.csv")) == ["good one", "bad one"]
    assert load_unlabelled_texts(str(tmp_path / "t.csv"), "label", limit=1) == ["1"]
    with pytest.raises(UserError, match="does not exist"):
        load_unlabelled_texts(str(tmp_path / "missing.txt"))
    with pytest.raises(UserError, match="holds no text"):
        (tmp_path / "blank.txt").write_text("\n \n", encoding="utf-8")
        load_unlabelled_texts(str(tmp_path / "blank.txt"))


def test_labelled_sample_is_exact_stratified_and_fixed():
    texts = [f"t{i}" for i in range(1000)]
    ids = np.array([0] * 700 + [1] * 250 + [2] * 50)
    (sample, sample_ids), (rest, rest_ids) = labelled_sample(texts, ids, 101)
    assert len(sample) == 101 and len(rest) == 899 and not set(sample) & set(rest)
    assert np.bincount(sample_ids).tolist() == [71, 25, 5]
    assert labelled_sample(texts, ids, 101)[0][0] == sample
    assert labelled_sample(texts, ids, 0)[0][0] == texts


def test_usage_example_is_a_short_text_of_the_data():
    assert usage_example(["  ", "Oil  prices\nrise"]) == "Oil prices rise"
    english = "Oil prices rise as stocks fall on fears of a slowing economy in Europe and Asia today"
    assert usage_example([english]) == "Oil prices rise as stocks fall on fears of a slowing"  # whole words
    chinese = "做父母一定要有刘墉这样的心态，不断地学习，不断地进步，不断地给自己补充新鲜血液"
    assert usage_example([chinese]) == "做父母一定要有刘墉这样的心态，不断地学习，不断地进步"  # 2 columns a character, clauses
    assert usage_example(["这本书很好看推荐大家买" * 10]) == ("这本书很好看推荐大家买" * 3)[:30]  # no break: 30 characters
    assert usage_example(["短", "长"]) == "短" and usage_example([]) is None
    assert train_cli.usage_line("python -m zoo predict {model} {example}", Path("runs/m.keras"), "it's 好") == \
        "python -m zoo predict runs/m.keras 'it'\"'\"'s 好'"
    assert train_cli.usage_line("python -m zoo sample {model}", Path("a b/m.keras"), None) == \
        "python -m zoo sample 'a b/m.keras'"


def test_pretrain_then_fine_tune_in_chinese(tmp_path, capsys):
    """The recipe on a plain Chinese text file, then a classifier from the run folder; a run that
    is not a pre-trained encoder is one error line."""
    lines = [CHINESE[i % 4] + "，" + CHINESE[(i * 3 + 1) % 4] for i in range(120)]
    (tmp_path / "zh.txt").write_text("\n".join(lines), encoding="utf-8")
    assert train_cli.main(["transformer_pretrain", "--preset", "tiny", "--data", str(tmp_path / "zh.txt"),
                           "--epochs", "1", "--run-dir", str(tmp_path / "pre")]) == 0
    out = capsys.readouterr().out
    assert "tokens chars" in out and "token pairs (bigrams) on" in out and "held out" in out
    labelled = "\n".join(f"{i % 2},{CHINESE[i % 4]}" for i in range(80))
    (tmp_path / "zh.csv").write_text("label,review\n" + labelled, encoding="utf-8")
    code = train_cli.main(["transformer_classifier", "--preset", "tiny", "--data", str(tmp_path / "zh.csv"),
                           "--pretrained", str(tmp_path / "pre"), "--labels", "40", "--epochs", "1", "--heatmaps", "0",
                           "--run-dir", str(tmp_path / "fine")])
    out = capsys.readouterr().out
    assert code == 0 and "starting from the encoder and vocabulary" in out and "--labels 40" in out
    hint = next(line for line in out.splitlines() if line.startswith("Use it:"))  # quotes the run's own texts
    assert f"predict {tmp_path / 'fine' / 'model.keras'} '" in hint and any(f"'{text}'" in hint for text in CHINESE)
    pre = keras.saving.load_model(tmp_path / "pre" / "model.keras")
    fine = keras.saving.load_model(tmp_path / "fine" / "model.keras")
    assert fine.vocabulary() == pre.vocabulary() and fine.bigrams and fine.token_split == "chars"
    code = train_cli._run(["transformer_classifier", "--preset", "tiny", "--data", str(tmp_path / "zh.csv"),
                           "--pretrained", str(tmp_path / "fine"), "--run-dir", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 2 and "not a pre-trained encoder" in err and "Traceback" not in err
    assert_main_user_error(["predict", tmp_path / "pre", "好"], capsys, "pre-trained text encoder", "--pretrained")
