"""The generic callbacks: epoch evaluation, embedding projector, confusion matrix."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import projector
from google.protobuf import text_format

from train.callbacks import ConfusionMatrix, EmbeddingProjector, EpochEvaluation, write_picture
from zoo.visualize import to_uint8_image


def _images(logdir):
    events = EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    events.Reload()
    return {tag: tf.io.decode_png(tf.make_ndarray(events.Tensors(tag)[-1].tensor_proto)[2]).numpy()
            for tag in events.Tags()["tensors"]}


def test_epoch_evaluation_adds_scalars_and_pictures(tmp_path):
    picture = np.full((4, 6, 3), 200, np.uint8)
    callback = EpochEvaluation(lambda model: ({"psnr": 30.0}, {"a": picture}), prefix="pics")
    logs = {"loss": 1.0}
    with tf.summary.create_file_writer(str(tmp_path)).as_default(step=1):
        callback.on_epoch_end(0, logs)
    assert logs == {"loss": 1.0, "val_psnr": 30.0}
    np.testing.assert_array_equal(_images(tmp_path)["pics/a"], picture)


def test_write_picture_writes_what_tf_summary_image_writes(tmp_path):
    rng = np.random.default_rng(0)
    pictures = {"gray": rng.integers(0, 256, (5, 7), dtype=np.uint8),
                "gray1": rng.integers(0, 256, (3, 2, 1), dtype=np.uint8),
                "rgba": rng.integers(0, 256, (4, 6, 4), dtype=np.uint8),
                "float": rng.random((6, 5, 3)).astype(np.float32)}  # [0, 1]: rounded to 0..255
    for name, writer in (("ours", write_picture), ("tf", None)):
        with tf.summary.create_file_writer(str(tmp_path / name)).as_default(step=3):
            for tag, picture in pictures.items():
                if writer:
                    writer(tag, picture, "what it shows")
                else:
                    tf.summary.image(tag, to_uint8_image(picture)[None], description="what it shows")
    ours, theirs = (EventAccumulator(str(tmp_path / name), size_guidance={"tensors": 0}) for name in ("ours", "tf"))
    ours.Reload(), theirs.Reload()
    for tag, picture in pictures.items():
        [mine], [reference] = ours.Tensors(tag), theirs.Tensors(tag)
        mine_values, reference_values = tf.make_ndarray(mine.tensor_proto), tf.make_ndarray(reference.tensor_proto)
        assert mine.step == 3 and list(mine_values[:2]) == list(reference_values[:2])  # width, height
        np.testing.assert_array_equal(tf.io.decode_png(mine_values[2]).numpy(), to_uint8_image(picture))
        assert ours.SummaryMetadata(tag) == theirs.SummaryMetadata(tag)  # the image plugin, the description


def test_embedding_projector_writes_what_tensorboard_reads(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    images = np.random.default_rng(1).integers(0, 256, (5, 4, 4, 1), dtype=np.uint8)
    callback = EmbeddingProjector(lambda model: (vectors, ["a", "b", "a", "c", "b"], images))
    callback.log_dir = str(tmp_path)  # what the trainer does for a callback whose log_dir is None
    callback.on_train_end()
    config = text_format.Parse((tmp_path / "projector_config.pbtxt").read_text(), projector.ProjectorConfig())
    [embedding] = config.embeddings
    assert embedding.metadata_path == "metadata.tsv" and list(embedding.sprite.single_image_dim) == [4, 4]
    reader = tf.train.load_checkpoint(str(tmp_path / "embedding.ckpt"))
    np.testing.assert_array_equal(reader.get_tensor(embedding.tensor_name), vectors)
    assert (tmp_path / "metadata.tsv").read_text().split() == ["a", "b", "a", "c", "b"]
    sprite = keras.utils.img_to_array(keras.utils.load_img(tmp_path / "sprite.png", color_mode="grayscale"))
    assert sprite.shape == (12, 12, 1)  # a 3x3 grid of 4x4 images
    np.testing.assert_array_equal(sprite[4:8, :4, 0], images[3, ..., 0])  # row-major placement


def test_confusion_matrix_counts_and_picture(tmp_path):
    true, predicted = [0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 2, 0, 2]
    callback = ConfusionMatrix(lambda model: (true, predicted), ["x", "y", "z"], cell=2)
    np.testing.assert_array_equal(callback.matrix(), [[1, 1, 0], [0, 2, 0], [1, 0, 2]])
    with tf.summary.create_file_writer(str(tmp_path)).as_default(step=1):
        callback.on_epoch_end(0)
    picture = _images(tmp_path)["confusion_matrix"]
    assert picture.shape == (6, 6, 3)
    assert picture[2, 2, 0] == 0 and picture[2, 0, 0] == 255  # row y: all predicted y, none x
    assert picture[0, 0, 0] == 127 or picture[0, 0, 0] == 128  # row x: half right
