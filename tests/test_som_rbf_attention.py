"""The hybrid image classifier (SOM of rows -> RBF -> attention over rows): its forward pass and
gradients, the batch-SOM rule in `fit_som` and `train_step`, saving, 2 replicas = 1, the
`python -m train som_rbf_attention` recipe and `python -m zoo predict` on image files."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT, assert_user_error, check_train_step, run_here, run_python
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train.__main__ as train_cli
import zoo.__main__ as zoo_cli
from train.recipes.som_rbf_attention import Config, stratified_sample
from zoo.errors import UserError
from zoo.layers import RBF, AttentionPooling, SelfOrganizingMap
from zoo.models import SOM, SomRbfAttentionClassifier
from zoo.visualize import row_attention_image

SHAPE = (6, 5, 1)


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n).astype("int32")
    images = rng.random((n, *SHAPE)).astype("float32") * 0.3
    for i, label in enumerate(labels):  # class k: bright rows 2k and 2k + 1
        images[i, 2 * label:2 * label + 2] += 0.7
    return images, labels


def _model(**kwargs):
    settings = dict(image_shape=SHAPE, som_grid=(2, 3), rbf_units=6, attention_units=4, hidden_units=5,
                    decay_steps=4, som_learning_rate_start=0.5, som_learning_rate_end=0.1)
    return SomRbfAttentionClassifier(["a", "b", "c"], **{**settings, **kwargs})


def _prepared(**kwargs):
    images, labels = _data()
    keras.utils.set_random_seed(0)
    model = _model(**kwargs)
    model.fit_som(images, steps=3, sigma_start=1.5)
    model.adapt_rbf(images)
    model.compile(keras.optimizers.Adam(0.02))
    return model, images, labels


def test_similarities_follow_the_formula_and_gradients_reach_the_image():
    model, images, _ = _prepared()
    rows = images.reshape(-1, 5)
    prototypes = keras.ops.convert_to_numpy(model.som.prototypes)
    width = float(model.similarity_width.numpy())
    expected = np.exp(-((rows[:, None] - prototypes[None]) ** 2).sum(-1) / (2 * width ** 2))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.row_similarities(images)).reshape(-1, 6),
                               expected, rtol=1e-4, atol=1e-6)
    features = keras.ops.convert_to_numpy(model.row_features(images[:2]))
    np.testing.assert_allclose(features[0, :, -1], np.linspace(0, 1, 6) * model.position_weight, rtol=1e-6)
    x = tf.constant(images[:3])
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model(x)
        first = logits[:, 0]
    gradient = tape.gradient(first, x).numpy()
    assert logits.shape == (3, 3) and logits.dtype == tf.float32
    assert np.isfinite(gradient).all() and np.abs(gradient).max() > 0
    assert not any(w is model.som.prototypes for w in model.trainable_weights)  # the map learns by its rule


def test_fit_som_is_kohonens_batch_map_on_the_rows():
    images, _ = _data()
    rows = images.reshape(-1, 5)
    model = _model()
    errors = model.fit_som(images, steps=3, sigma_start=1.5, sigma_end=0.7)
    reference = SOM(2, 3, sigma_start=1.5, sigma_end=0.7, decay_steps=3)  # full-batch steps, rate 1
    reference.initialize(rows, "pca")
    reference.compile()
    reference.fit(rows, batch_size=len(rows), epochs=3, verbose=0, shuffle=False)
    np.testing.assert_allclose(model.som.prototypes.numpy(), reference.som.prototypes.numpy(), atol=1e-5)
    assert errors == pytest.approx(reference.errors(rows), rel=1e-5)
    assert float(model.similarity_width.numpy()) == pytest.approx(errors["quantization_error"], rel=1e-5)


def test_train_step_trains_every_weight_and_moves_the_map_by_the_batch_rule():
    model, images, labels = _prepared(dropout=0.0)
    before = model.som.prototypes.numpy().copy()
    logs = check_train_step(model, [(tf.constant(images), tf.constant(labels))], steps=1)
    assert {"loss", "accuracy", "som_quantization_error"} <= set(logs[0])
    rows = images.reshape(-1, 5)
    d2 = ((rows[:, None] - before[None]) ** 2).sum(-1)
    assert logs[0]["som_quantization_error"] == pytest.approx(np.sqrt(d2.min(1)).mean(), rel=1e-4)
    sigma, rate = (float(v) for v in model.som_schedules(0))
    grid = model.som.positions
    h = np.exp(-((grid[d2.argmin(1)][:, None] - grid[None]) ** 2).sum(-1) / (2 * sigma ** 2))  # (N, U)
    target = (h.T @ rows) / h.sum(0)[:, None]
    np.testing.assert_allclose(model.som.prototypes.numpy(), (1 - rate) * before + rate * target, atol=1e-5)
    frozen = _prepared(som_learning_rate_start=0.0)[0]
    kept = frozen.som.prototypes.numpy().copy()
    frozen.train_step((tf.constant(images), tf.constant(labels)))
    np.testing.assert_array_equal(frozen.som.prototypes.numpy(), kept)


def test_fit_learns_and_predictions_round_trip_through_keras(tmp_path):
    model, images, labels = _prepared(dropout=0.0, hidden_units=0, rbf_units=12, position_weight=3.0)
    model.fit(images, labels, batch_size=8, epochs=40, verbose=0)
    probabilities, attention = model.predict_proba(images)
    assert (probabilities.argmax(1) == labels).mean() >= 0.9, (probabilities.argmax(1), labels)
    assert attention.shape == (24, 6) and np.allclose(attention.sum(1), 1, atol=1e-5)
    assert model.represent(images).shape == (24, 12)
    pixels = np.round(images * 255).astype(np.uint8)
    results = model.predict_images(pixels)
    expected = model.predict_proba(pixels / 255.0)[0].argmax(1)
    assert [r["label"] for r in results] == [["a", "b", "c"][k] for k in expected]
    assert [w for _, w in results[0]["rows"]] == sorted((w for _, w in results[0]["rows"]), reverse=True)
    model.save(tmp_path / "hybrid.keras")
    loaded = keras.saving.load_model(tmp_path / "hybrid.keras")  # safe mode
    assert isinstance(loaded, SomRbfAttentionClassifier) and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded(images), model(images), atol=1e-5)
    for new, old in zip(loaded.predict_proba(images[..., 0]), (probabilities, attention)):  # (N, H, W) too
        np.testing.assert_allclose(new, old, atol=1e-5)
    with pytest.raises(UserError, match="6x5 images with 1 channel"):
        loaded.predict_proba(np.zeros((2, 7, 5, 1)))


def test_the_sketch_as_written_builds_trains_saves_and_loads(tmp_path):
    """The founding sketch's stack, exactly: a map of image rows with soft similarities, RBF
    units, attention over the 28 rows, a softmax; the map fitted by the batch rule before `fit`."""
    from zoo.data import load_images

    x, y = load_images("assets:mnist", "train", limit=300)[:2]
    x = x[..., 0]  # (300, 28, 28): 28 rows of 28 pixels per digit
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28)), SelfOrganizingMap(8, 8, output_mode="similarities"), RBF(256),
                              AttentionPooling(), keras.layers.Dense(10, "softmax")])
    som, rbf = model.layers[0], model.layers[1]
    assert [tuple(layer.output.shape) for layer in model.layers] == [(None, 28, 64), (None, 28, 256), (None, 256),
                                                                     (None, 10)]
    som.initialize(x, "pca")  # the 8,400 rows, each a sample
    som.train_batch_map(x, steps=5)
    rbf.adapt(x, feature_model=som, max_samples=3000)  # k-means centres on the rows' similarities
    prototypes = som.prototypes.numpy().copy()
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    loss = model.fit(x, y, batch_size=32, epochs=4, verbose=0).history["loss"]
    assert loss[-1] < 0.85 * loss[0], loss
    np.testing.assert_array_equal(som.prototypes.numpy(), prototypes)  # fit never moves the map
    assert not any(w is som.prototypes for w in model.trainable_weights)
    inputs = tf.constant(x[:16])
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        batch_loss = keras.losses.sparse_categorical_crossentropy(y[:16], model(inputs)) * 1.0
    gradients = tape.gradient(batch_loss, [inputs, *model.trainable_weights])
    names = [w.path for w in model.trainable_weights]
    assert len(names) == 7 and all(np.abs(g.numpy()).max() > 0 for g in gradients), names  # pixels, RBF,
    model.save(tmp_path / "sketch.keras")  # attention and dense all get gradients through the map
    loaded = keras.saving.load_model(tmp_path / "sketch.keras")  # safe mode
    assert loaded.layers[0].get_config() == som.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_pictures():
    model, images, _ = _prepared()
    picture = model.som_picture(scale=2, strip=3)
    assert picture.dtype == np.uint8 and picture.shape == (2 * 6 + 2, 3 * 10 + 2 * 2, 3)
    shaded = row_attention_image(images[0], np.array([0, 0, 1, 0, 0, 0], np.float32), scale=2, bar=4)
    assert shaded.shape == (12, 18, 3)
    assert (shaded[4:6, 10:] == [255, 40, 40]).all() and (shaded[0:2, 10:] == 255).all()  # full bar, no bar


def test_stratified_sample_and_config():
    labels = np.repeat(np.arange(10), [50, 40, 60, 50, 50, 50, 50, 50, 50, 5])
    chosen = stratified_sample(labels, 100)
    assert len(chosen) == len(set(chosen)) == 100 and np.array_equal(chosen, stratified_sample(labels, 100))
    counts = np.bincount(labels[chosen])
    assert counts[9] == 5 and counts[:9].min() >= 10  # class 9 has only 5: others fill up the 100
    balanced = np.repeat(np.arange(10), 20)
    assert np.bincount(balanced[stratified_sample(balanced, 100)]).tolist() == [10] * 10
    assert len(stratified_sample(labels, 0)) == len(labels)
    with pytest.raises(ValueError, match="--som-rate"):
        Config(som_rate=1.5)


REPLICAS = """
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from train.strategy import make_strategy
from train.trainer import distribute, make_step_function
from zoo.models import SomRbfAttentionClassifier
rng = np.random.default_rng(0)
x = rng.random((16, 6, 5, 1)).astype("float32"); y = (np.arange(16) % 3).astype("int32")
keras.utils.set_random_seed(0)  # the first model's initial weights (the second is given them): how far each moves
def run(name, weights):
    strategy = make_strategy(name)
    with strategy.scope():
        m = SomRbfAttentionClassifier(["a", "b", "c"], (6, 5, 1), (2, 3), 6, 4, hidden_units=5, dropout=0.0,
                                      som_learning_rate_start=0.5, decay_steps=2)
        m.fit_som(x, steps=2); m.adapt_rbf(x)
        m.compile(keras.optimizers.SGD(0.5)); m.optimizer.build(m.trainable_variables)
    if weights is not None: m.set_weights(weights)
    w0 = m.get_weights()
    it = iter(distribute(strategy, tf.data.Dataset.from_tensor_slices((x, y)).batch(16).repeat()))
    step = make_step_function(strategy, m.train_step)
    learned = [np.array(v) for v in m.trainable_weights + [m.som.prototypes]]
    logs = [{k: float(v) for k, v in step(next(it))[0].items()} for _ in range(2)]
    moved = min(np.abs(a - np.array(v)).max() for a, v in zip(learned, m.trainable_weights + [m.som.prototypes]))
    return strategy.num_replicas_in_sync, w0, m.get_weights(), logs, moved
r1, w0, w1, l1, moved = run("one_device", None)
r2, _, w2, l2, _ = run("mirrored", w0)
print(r1, r2, max(np.abs(a - b).max() for a, b in zip(w1, w2)), moved,
      abs(l1[-1]["som_quantization_error"] - l2[-1]["som_quantization_error"]))
"""


def test_two_replicas_train_like_one(tmp_path):
    """Two steps on the same global batches: gradients and batch-SOM sums over 2 replicas == 1."""
    script = tmp_path / "replicas.py"
    script.write_text(REPLICAS)
    result = run_python([script], env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    replicas_1, replicas_2, difference, smallest_change, log_difference = result.stdout.split()[-5:]
    assert (replicas_1, replicas_2) == ("1", "2")
    assert float(difference) < 1e-5 and float(smallest_change) > 1e-4, result.stdout  # every weight and the map moved
    assert float(log_difference) < 1e-5


# ----------------------------------------------------------------------------- command lines

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("hybrid") / "run"
    assert train_cli.main(["som_rbf_attention", "--preset", "tiny", "--run-dir", str(run_dir), "--quiet"]) == 0
    return run_dir


def test_tiny_run_writes_the_model_and_tensorboard_pictures(tiny_run):
    model = keras.saving.load_model(tiny_run / "model.keras")
    assert isinstance(model, SomRbfAttentionClassifier) and model.image_shape == (28, 28, 1)
    assert model.class_names == [str(d) for d in range(10)]
    events = EventAccumulator(str(tiny_run / "logs"), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert {"som_rbf_attention/som_map", "confusion_matrix", "epoch/val_accuracy",
            "train/som_quantization_error"} <= tags, tags
    rows = [t for t in tags if t.startswith("som_rbf_attention/rows_0_true_")]
    assert len(rows) == 1
    picture = tf.image.decode_png(tf.make_ndarray(events.Tensors(rows[0])[-1].tensor_proto)[2]).numpy()
    assert picture.shape == (28 * 4, 40 * 4, 3)


def test_zoo_predict_reads_image_files(tiny_run, tmp_path, capsys):
    from zoo.data import load_images

    digits = load_images("assets:mnist", "test", value_range=(0, 255), limit=2)[0].astype(np.uint8)
    paths = [str(tmp_path / f"digit{i}.png") for i in range(2)]
    for image, path in zip(digits, paths):
        Image.fromarray(image[..., 0]).convert("RGB").save(path)  # colour files become gray
    assert zoo_cli.main(["predict", str(tiny_run), *paths, "--json"]) == 0
    predictions = json.loads(capsys.readouterr().out)["predictions"]
    model = keras.saving.load_model(tiny_run / "model.keras")
    expected = model.predict_images(digits)
    assert [p["input"] for p in predictions] == paths
    assert [p["label"] for p in predictions] == [e["label"] for e in expected]
    assert [p["rows"] for p in predictions] == [[list(r) for r in e["rows"]] for e in expected]
    assert zoo_cli.main(["predict", str(tiny_run), paths[0]]) == 0
    assert "(attention: row " in capsys.readouterr().out
    Image.new("L", (20, 28)).save(tmp_path / "small.png")
    assert_user_error(run_here(["zoo", "predict", tiny_run, tmp_path / "small.png"]), "small.png", "20x28",
                      "28x28")
