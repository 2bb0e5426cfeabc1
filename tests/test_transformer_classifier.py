"""TransformerTextClassifier (model), `python -m train transformer_classifier` (recipe) and
`python -m zoo predict` on its saved model."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_user_error, check_train_step, run_here

import train.__main__ as train_cli
import zoo.__main__ as zoo_cli
from train.config import ConfigError
from train.recipes.transformer_classifier import PRESETS, Config
from zoo.layers import PositionEmbedding, TransformerEncoder
from zoo.models import TextClassifier, TransformerTextClassifier

TEXTS = ["stocks fall as oil prices rise", "the team won the final match", "shares and profits up",
         "striker scores twice in the cup", "bank profit doubles again", "goalkeeper saves a penalty"]
LABELS = np.array([0, 1, 0, 1, 0, 1], np.int32)


def small_model(**kwargs) -> TransformerTextClassifier:
    settings = {"max_tokens": 50, "sequence_length": 8, "embedding_dim": 8, "num_layers": 2, "num_heads": 2,
                "ff_dim": 16, **kwargs}
    model = TransformerTextClassifier(["business", "sports"], **settings)
    model.adapt(TEXTS)
    model.compile(keras.optimizers.Adam(0.01))
    return model


# ----------------------------------------------------------------------------- model

@pytest.mark.parametrize("settings", [{}, {"position": "sinusoidal", "norm_first": True}])
def test_keras_round_trip_gives_equal_predictions(tmp_path, settings):
    model = small_model(**settings)
    assert isinstance(model, TextClassifier) and model.encoded_features == 8
    layers = model.encoder.layers
    assert isinstance(layers[0], PositionEmbedding) and sum(isinstance(l, TransformerEncoder) for l in layers) == 2
    check_train_step(model, [(tf.constant(TEXTS), LABELS)])
    model.save(tmp_path / "t.keras")
    loaded = keras.saving.load_model(tmp_path / "t.keras")  # safe_mode stays on
    assert isinstance(loaded, TransformerTextClassifier) and loaded.get_config() == model.get_config()
    assert "units" not in loaded.get_config() and loaded.norm_first == settings.get("norm_first", False)
    new = ["oil prices and the cup", "a word never seen", ""]
    for a, b in zip(loaded.predict_proba(new), model.predict_proba(new)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(loaded.represent(new), model.represent(new), atol=1e-6)


def test_fit_learns_and_attention_is_on_real_words():
    model = small_model(dropout=0.1, word_dropout=0.1, encoder_dropout=0.1, attention_dropout=0.1)
    history = model.fit(tf.data.Dataset.from_tensor_slices((TEXTS, LABELS)).batch(6), epochs=30, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert [r["label"] for r in model.predict_texts(TEXTS)] == [model.class_names[i] for i in LABELS]
    pairs = model.word_attention(["oil prices", "one two three four five six seven eight nine ten"])
    assert [w for w, _ in pairs[0]] == ["oil", "prices"] and len(pairs[1]) == 8
    assert all(sum(w for _, w in row) == pytest.approx(1.0, abs=1e-5) for row in pairs)
    [first, second] = model.attention_scores(["oil prices", "the cup final"])
    assert first.shape == second.shape == (2, 2, 8, 8)
    assert np.all(first[0, :, :, 2:] == 0) and np.all(first[1, :, :, 3:] == 0)  # padded keys
    np.testing.assert_allclose(first.sum(-1), 1.0, atol=1e-5)


def test_training_dropout_is_stateless_per_step_seed_and_off_at_inference():
    model = small_model(dropout=0.0, encoder_dropout=0.3, attention_dropout=0.3)
    x, mask = model.embed(tf.constant(TEXTS))
    plain = model._encode(x, mask).numpy()
    a, b, c = (model._encode(x, mask, tf.constant(seed)).numpy() for seed in ([4, 0], [4, 0], [4, 1]))
    np.testing.assert_array_equal(a, b)  # (step, replica) decides the masks
    assert np.abs(a - c).max() > 1e-3 and np.abs(a - plain).max() > 1e-3
    np.testing.assert_array_equal(model(tf.constant(TEXTS), training=True), model(tf.constant(TEXTS)))


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="divisible"):
        TransformerTextClassifier(["a", "b"], embedding_dim=10, num_heads=4)
    with pytest.raises(ValueError, match="position"):
        TransformerTextClassifier(["a", "b"], embedding_dim=8, num_heads=2, position="rotary")


# ----------------------------------------------------------------------------- recipe and CLI

def test_config_validation():
    for flags, field in (({"num_heads": 3}, "embedding-dim"), ({"num_layers": 0}, "num-layers"),
                         ({"attention_dropout": 1.0}, "attention-dropout")):
        with pytest.raises(ConfigError, match=field):
            dataclasses.replace(Config(), **flags).validate()
    for preset in PRESETS.values():
        preset.validate()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    code = train_cli.main(["transformer_classifier", "--preset", "tiny", "--position", "sinusoidal",
                           "--run-dir", str(run_dir), "--quiet"])
    assert code == 0
    return run_dir


def test_tiny_run_saves_a_model_that_zoo_predict_uses(tiny_run, capsys):
    saved = json.loads((tiny_run / "config.json").read_text())
    assert saved["recipe"] == "transformer_classifier" and saved["config"]["position"] == "sinusoidal"
    loaded = keras.saving.load_model(tiny_run / "model.keras")
    assert isinstance(loaded, TransformerTextClassifier) and loaded.position == "sinusoidal"
    assert loaded.num_classes == 4 and loaded.sequence_length == PRESETS["tiny"].sequence_length
    capsys.readouterr()
    assert zoo_cli.main(["predict", str(tiny_run), "Oil prices rise as stocks fall", "--json"]) == 0
    prediction = json.loads(capsys.readouterr().out)["predictions"][0]
    assert prediction["label"] in ("World", "Sports", "Business", "Sci/Tech")
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert {w for w, _ in prediction["attention"]} <= {"oil", "prices", "rise", "as", "stocks", "fall"}
    assert zoo_cli.main(["predict", str(tiny_run / "model.keras"), "Cup final tonight"]) == 0
    line = capsys.readouterr().out.strip()
    assert "Cup final tonight  (attention: " in line and line.split()[0] in loaded.class_names


def test_bad_flag_is_a_clear_error(tmp_path):
    result = run_here(["train", "transformer_classifier", "--preset", "tiny", "--num-heads", "3",
                      "--run-dir", str(tmp_path / "run")])
    assert_user_error(result, "embedding-dim")
    assert not (tmp_path / "run").exists()


def test_bench_text_gives_both_networks_the_same_split():
    import sys

    from helpers import ROOT

    sys.path.insert(0, str(ROOT / "tools"))
    import bench_text

    _, lstm, transformer = bench_text.parse(["--limit", "400", "--val-fraction", "0.3", "--epochs", "2",
                                             "--transformer-epochs", "3", "--transformer-num-layers", "2"])
    assert (lstm.limit, lstm.val_fraction, lstm.epochs) == (400, 0.3, 2)
    assert (transformer.limit, transformer.val_fraction, transformer.epochs, transformer.num_layers) == (400, 0.3, 3, 2)
    assert all(getattr(lstm, f) == getattr(transformer, f) for f in bench_text.SPLIT_FIELDS)


def test_bench_text_seeds_and_paired_test():
    import sys

    from helpers import ROOT

    sys.path.insert(0, str(ROOT / "tools"))
    import bench_text

    args, lstm, _ = bench_text.parse(["--seeds", "3,1,2", "--adversarial", "0"])
    assert args.seeds == [3, 1, 2] and lstm.adversarial == 0
    for bad in (["--seeds", "1"], ["--seeds", "1,1"], ["--seeds", "a,b"], ["--seeds", "0,1", "--run", "x"]):
        with pytest.raises(SystemExit):
            bench_text.parse(bad)
    truth = ["a"] * 12
    first = ["a"] * 8 + ["b"] * 4  # right on 8
    second = ["b"] * 8 + ["a"] + ["b"] * 3  # right on 1, which first gets wrong
    assert bench_text.mcnemar(truth, first, second) == (8, 1, 2 * (1 + 9) / 2 ** 9)  # exact binomial tail
    assert bench_text.mcnemar(truth, second, first)[2] == bench_text.mcnemar(truth, first, second)[2]
    assert bench_text.mcnemar(truth, first, first) == (0, 0, 1.0)
    runs = [{"accuracy": a, "seconds": 10.0, "config": dataclasses.replace(lstm, seed=s)}
            for a, s in ((0.85, 0), (0.87, 1))]
    assert bench_text.seed_summary("lstm", runs) == (
        "zoo lstm over 2 seeds: 86.00% mean ± 1.41 standard deviation (seeds 0, 1: 85.00%, 87.00%), "
        "10.0 s of training per run")
