"""Image I/O and the super-resolution pipelines (folders and tfds: names)."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from zoo.data import (
    bicubic_downscale,
    bicubic_upscale,
    crop_to_multiple,
    list_images,
    read_image,
    read_images,
    sr_eval_images,
    sr_train_dataset,
    write_image,
)
from zoo.errors import UserError


def _save(path, shape, seed=0, value=None):
    """Write a random (or constant) uint8 RGB PNG of `shape` (H, W) and return its pixels."""
    rng = np.random.default_rng(seed)
    pixels = (np.full((*shape, 3), value, np.uint8) if value is not None
              else rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
    Image.fromarray(pixels).save(path)
    return pixels


def _truncated_png(path):
    _save(path, (32, 32))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


# ----------------------------------------------------------------------------- reading and writing

def test_read_images_sorted_and_exact(tmp_path):
    b = _save(tmp_path / "b.png", (5, 7), seed=1)
    a = _save(tmp_path / "a.bmp", (6, 4), seed=2)
    (tmp_path / "notes.txt").write_text("not an image, not listed")
    names, arrays = zip(*read_images(tmp_path), strict=True)
    assert names == ("a.bmp", "b.png")
    np.testing.assert_array_equal(arrays[0], a)
    np.testing.assert_array_equal(arrays[1], b)
    assert arrays[1].dtype == np.uint8


def test_read_images_names_every_bad_file(tmp_path):
    _save(tmp_path / "good.png", (8, 8))
    (tmp_path / "x.png").write_text("hello, I am text")
    _truncated_png(tmp_path / "trunc.png")
    with pytest.raises(UserError, match="2 unreadable") as error:
        read_images(tmp_path)
    assert "x.png" in str(error.value) and "trunc.png" in str(error.value)
    assert "good.png" not in str(error.value)


def test_read_image_missing_and_gray(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_image(tmp_path / "nope.png")
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png", mode="L").shape == (3, 4, 1)  # the old keyword still works
    assert read_image(tmp_path / "g.png", mode="RGB").shape == (3, 4, 3)
    assert read_image(tmp_path / "g.png").shape == (3, 4, 1)  # gray keeps its one channel
    assert read_image(tmp_path / "g.png", 3).shape == (3, 4, 3)


# ----------------------------------------------------------------------------- every mode and depth

RAMP16 = np.array([[0, 128, 129, 257], [32896, 65278, 65535, 1000]], np.uint16)
RAMP16_AS_8 = np.array([[0, 0, 1, 1], [128, 254, 255, 4]], np.uint8)  # round(v / 257)


@pytest.mark.parametrize("name, array", [
    ("i16.png", RAMP16),  # PIL mode I;16
    ("i16b.tif", RAMP16.astype(">u2")),  # I;16B
    ("i32.tif", RAMP16.astype(np.int32)),  # I
    ("f32.tif", RAMP16.astype(np.float32)),  # F
])
def test_read_image_16_bit_gray_is_scaled_not_clipped(tmp_path, name, array):
    Image.fromarray(array).save(tmp_path / name)
    gray = read_image(tmp_path / name)
    assert gray.shape == (2, 4, 1) and gray.dtype == np.uint8
    np.testing.assert_array_equal(gray[..., 0], RAMP16_AS_8)
    rgb = read_image(tmp_path / name, channels=3)  # was almost all white before
    np.testing.assert_array_equal(rgb, np.repeat(RAMP16_AS_8[..., None], 3, axis=-1))
    rgba = read_image(tmp_path / name, channels=4)
    assert (rgba[..., 3] == 255).all() and (rgba[..., 0] == RAMP16_AS_8).all()


def test_read_image_8_bit_int_image_is_not_scaled(tmp_path):
    Image.fromarray(np.array([[0, 100, 255]], np.int32)).save(tmp_path / "i.tif")  # mode I, 0..255
    np.testing.assert_array_equal(read_image(tmp_path / "i.tif")[..., 0], [[0, 100, 255]])


def test_read_image_1_bit(tmp_path):
    bits = np.array([[True, False, True], [False, False, True]])
    Image.fromarray(bits).save(tmp_path / "bits.png")
    assert Image.open(tmp_path / "bits.png").mode == "1"
    np.testing.assert_array_equal(read_image(tmp_path / "bits.png")[..., 0], bits * 255)
    np.testing.assert_array_equal(read_image(tmp_path / "bits.png", 3)[..., 2], bits * 255)


def _rng_pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("mode, shape", [("L", (3, 5)), ("LA", (3, 5, 2)), ("RGB", (3, 5, 3)),
                                         ("RGBA", (3, 5, 4))])
def test_read_image_every_conversion_matches_pil(tmp_path, mode, shape):
    pixels = _rng_pixels(shape)
    Image.fromarray(pixels, mode).save(tmp_path / "x.png")
    natural = read_image(tmp_path / "x.png")
    np.testing.assert_array_equal(natural, pixels.reshape(3, 5, -1))  # channels=None keeps them
    for channels, target in [(1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")]:
        expected = np.asarray(Image.fromarray(pixels, mode).convert(target)).reshape(3, 5, channels)
        np.testing.assert_array_equal(read_image(tmp_path / "x.png", channels), expected)


def test_read_image_gray_to_rgb_replicates_and_rgba_to_gray_drops_alpha(tmp_path):
    gray = _rng_pixels((4, 4))
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g.png", 3), np.stack([gray] * 3, axis=-1))
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 0)  # a transparent red pixel is still red: alpha is dropped
    rgba[0, 1] = (0, 0, 255, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png", 1)[0, :, 0], [76, 29])  # 601 luma
    np.testing.assert_array_equal(read_image(tmp_path / "a.png", 3)[0], [(255, 0, 0), (0, 0, 255)])


def test_read_image_palette_with_and_without_transparency(tmp_path):
    palette = Image.new("P", (3, 1))
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    palette.putdata([0, 1, 2])
    palette.save(tmp_path / "opaque.png")
    palette.save(tmp_path / "clear.png", transparency=1)  # green is transparent
    opaque = read_image(tmp_path / "opaque.png")
    np.testing.assert_array_equal(opaque[0], [(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    clear = read_image(tmp_path / "clear.png")
    assert clear.shape == (1, 3, 4)
    np.testing.assert_array_equal(clear[0, :, 3], [255, 0, 255])
    np.testing.assert_array_equal(read_image(tmp_path / "clear.png", 3), opaque)


def test_read_image_cmyk_and_ycbcr_become_rgb(tmp_path):
    Image.new("CMYK", (2, 2), (0, 255, 0, 0)).save(tmp_path / "cmyk.tif")  # magenta ink
    np.testing.assert_array_equal(read_image(tmp_path / "cmyk.tif")[0, 0], (255, 0, 255))
    Image.new("YCbCr", (2, 2), (128, 128, 128)).save(tmp_path / "ycc.tif")
    assert read_image(tmp_path / "ycc.tif").shape == (2, 2, 3)


def test_read_image_applies_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "phone.jpg", exif=exif)
    assert read_image(tmp_path / "phone.jpg").shape == (6, 4, 3)
    assert read_image(tmp_path / "phone.jpg", 1).shape == (6, 4, 1)


def test_read_image_bad_channels(tmp_path):
    _save(tmp_path / "x.png", (2, 2))
    for bad in (0, 5, "CMYK"):
        with pytest.raises(UserError, match="cannot convert images to"):
            read_image(tmp_path / "x.png", bad)


def test_read_images_channels_and_16_bit(tmp_path):
    Image.fromarray(RAMP16).save(tmp_path / "deep.png")
    _save(tmp_path / "rgb.png", (2, 4), value=9)
    (tmp_path / ".hidden.png").write_text("macOS metadata, not an image")
    natural = dict(read_images(tmp_path))
    assert natural["deep.png"].shape == (2, 4, 1) and natural["rgb.png"].shape == (2, 4, 3)
    gray = dict(read_images(tmp_path, channels=1))
    np.testing.assert_array_equal(gray["deep.png"][..., 0], RAMP16_AS_8)
    assert gray["rgb.png"].shape == (2, 4, 1)


def test_list_images_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        list_images(tmp_path / "missing")
    (tmp_path / "file.png").write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        list_images(tmp_path / "file.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no PNG"):
        list_images(tmp_path / "empty")


def test_write_image_round_trip_and_no_leftovers(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 6, 4), dtype=np.uint8)
    write_image(tmp_path / "out.png", pixels)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")), pixels)
    write_image(tmp_path / "gray.png", pixels[..., :1])
    assert Image.open(tmp_path / "gray.png").mode == "L"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gray.png", "out.png"]


def test_write_image_errors_leave_nothing(tmp_path):
    pixels = np.zeros((4, 4, 4), np.uint8)
    with pytest.raises(UserError, match="does not exist"):
        write_image(tmp_path / "missing" / "out.png", pixels)
    with pytest.raises(UserError, match="cannot write"):
        write_image(tmp_path / "out.xyz", pixels)
    (tmp_path / "old.jpg").write_bytes(b"previous content")
    with pytest.raises(UserError, match="cannot write"):
        write_image(tmp_path / "old.jpg", pixels)  # RGBA cannot be a JPEG
    assert (tmp_path / "old.jpg").read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.jpg"]


def test_write_image_is_atomic_when_saving_fails(tmp_path, monkeypatch):
    (tmp_path / "out.png").write_bytes(b"previous content")

    def half_save(image, fp, *args, **kwargs):
        open(fp, "wb").write(b"partial")
        raise ValueError("disk trouble")

    monkeypatch.setattr(Image.Image, "save", half_save)
    with pytest.raises(UserError, match="disk trouble"):
        write_image(tmp_path / "out.png", np.zeros((2, 2, 3), np.uint8))
    assert (tmp_path / "out.png").read_bytes() == b"previous content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_bicubic_resampling_shapes():
    hr = np.random.default_rng(0).integers(0, 256, (2, 12, 8, 3), dtype=np.uint8)
    lr = bicubic_downscale(hr, 4)
    assert lr.shape == (2, 3, 2, 3) and lr.dtype == tf.uint8
    up = bicubic_upscale(lr, 4)
    assert up.shape == (2, 12, 8, 3) and up.dtype == tf.uint8
    flat = np.full((8, 8, 3), 77, np.uint8)  # a constant image stays constant both ways
    np.testing.assert_array_equal(bicubic_upscale(bicubic_downscale(flat, 2), 2).numpy(), flat)


def test_crop_to_multiple():
    image = np.zeros((43, 50, 3))
    assert crop_to_multiple(image, 4).shape == (40, 48, 3)
    assert crop_to_multiple(image, 1).shape == image.shape


# ----------------------------------------------------------------------------- sr_eval_images

def test_sr_eval_images_crops_to_multiple(tmp_path):
    pixels = _save(tmp_path / "a.png", (43, 50))
    [(name, hr)] = sr_eval_images(str(tmp_path), 4)
    assert name == "a.png" and hr.shape == (40, 48, 3)
    np.testing.assert_array_equal(hr, pixels[:40, :48])
    assert sr_eval_images(str(tmp_path), 3)[0][1].shape == (42, 48, 3)


def test_sr_eval_images_keeps_gray_single_channel_and_drops_alpha(tmp_path):
    gray = _rng_pixels((26, 24))
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    Image.fromarray(np.stack([gray, gray], axis=-1), "LA").save(tmp_path / "gray_alpha.png")
    Image.fromarray((gray.astype(np.uint16) * 257)).save(tmp_path / "gray16.png")
    rgba = _rng_pixels((24, 24, 4), seed=1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    images = dict(sr_eval_images(str(tmp_path), 4))
    for name in ("gray.png", "gray_alpha.png", "gray16.png"):  # 16-bit gray: v * 257 -> v
        np.testing.assert_array_equal(images[name], gray[:24, :24, None], err_msg=name)
    np.testing.assert_array_equal(images["rgba.png"], rgba[..., :3])


def test_sr_eval_images_embedded_asset():
    images = sr_eval_images("assets:sr/Set5", 4)
    assert [name for name, _ in images][:2] == ["baby.png", "bird.png"]
    assert images[0][1].shape == (512, 512, 3)


def test_sr_eval_images_too_small(tmp_path):
    _save(tmp_path / "big.png", (40, 40))
    _save(tmp_path / "tiny.png", (18, 40))
    with pytest.raises(UserError, match="too small.*tiny.png"):
        sr_eval_images(str(tmp_path), 4)


def test_sr_eval_images_missing_folder(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        sr_eval_images(str(tmp_path / "nope"), 4)


# ----------------------------------------------------------------------------- sr_train_dataset

def _batches(dataset, n):
    return [tuple(t.numpy() for t in pair) for pair in dataset.take(n)]


@pytest.fixture(scope="module")
def train_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    for i, shape in enumerate([(40, 40), (48, 36), (33, 64)]):
        _save(folder / f"{i}.png", shape, seed=i)
    return str(folder)


def test_train_shapes_dtypes_range(train_folder):
    (lr, hr), = _batches(sr_train_dataset(train_folder, crop=16, scale=4, batch_size=4, seed=1), 1)
    assert lr.shape == (4, 4, 4, 3) and hr.shape == (4, 16, 16, 3)
    assert lr.dtype == np.float32 and hr.dtype == np.float32
    assert 0.0 <= hr.min() and hr.max() <= 1.0 and 0.0 <= lr.min() and lr.max() <= 1.0
    hr_u8 = np.round(hr * 255).astype(np.uint8)  # LR is antialiased bicubic of HR, rounded
    np.testing.assert_array_equal(np.round(lr * 255), bicubic_downscale(hr_u8, 4).numpy())


def test_train_deterministic_per_seed(train_folder):
    make = lambda seed: _batches(sr_train_dataset(train_folder, 16, 4, 2, seed=seed), 3)  # noqa: E731
    first, again, other = make(5), make(5), make(6)
    for (lr1, hr1), (lr2, hr2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(hr1, hr2)
        np.testing.assert_array_equal(lr1, lr2)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(first, other, strict=True))


def test_train_flips_and_rotations_vary(tmp_path):
    pixels = _save(tmp_path / "only.png", (16, 16), seed=3)  # crop = image: only flips/rotations vary
    variants = [np.rot90(p, k) for p in (pixels, pixels[:, ::-1]) for k in range(4)]
    (_, hr), = _batches(sr_train_dataset(str(tmp_path), crop=16, scale=4, batch_size=48, seed=0), 1)
    seen = set()
    for image in np.round(hr * 255).astype(np.uint8):
        matches = [i for i, v in enumerate(variants) if np.array_equal(image, v)]
        assert len(matches) == 1, "every crop is a flip/rotation of the image"
        seen.add(matches[0])
    assert len(seen) >= 6, f"only {len(seen)} of the 8 flips/rotations in 48 draws"


def test_train_too_small_images(tmp_path):
    _save(tmp_path / "small.png", (12, 40), value=0)
    with pytest.raises(UserError, match="every image is smaller.*small.png"):
        sr_train_dataset(str(tmp_path), crop=16, scale=4, batch_size=2)
    _save(tmp_path / "big.png", (20, 20), value=255)
    with pytest.warns(UserWarning, match="skipping 1 image.*small.png"):
        dataset = sr_train_dataset(str(tmp_path), crop=16, scale=4, batch_size=8)
    (_, hr), = _batches(dataset, 1)
    assert hr.min() == 1.0, "only the big (white) image is used"


def test_train_reads_16_bit_gray_as_rgb(tmp_path):
    Image.fromarray(np.full((16, 16), 32896, np.uint16)).save(tmp_path / "deep.png")  # 128 in 8 bits
    (lr, hr), = _batches(sr_train_dataset(str(tmp_path), crop=16, scale=4, batch_size=2), 1)
    assert hr.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(np.round(hr * 255), 128)
    np.testing.assert_array_equal(np.round(lr * 255), 128)


def test_train_crop_must_be_multiple_of_scale(train_folder):
    with pytest.raises(UserError, match="multiple of the scale"):
        sr_train_dataset(train_folder, crop=18, scale=4, batch_size=2)


def test_train_missing_folder(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        sr_train_dataset(str(tmp_path / "nope"), crop=16, scale=4, batch_size=2)


# ----------------------------------------------------------------------------- tfds: sources

def test_tfds_train_mocked():
    with warnings.catch_warnings(), tfds.testing.mock_data(num_examples=4):
        warnings.simplefilter("ignore")
        dataset = sr_train_dataset("tfds:div2k/bicubic_x4", crop=8, scale=4, batch_size=2, seed=0)
        (lr, hr), (lr2, hr2) = _batches(dataset, 2)
    assert lr.shape == (2, 2, 2, 3) and hr.shape == (2, 8, 8, 3) and hr.dtype == np.float32
    assert 0.0 <= hr.min() and hr.max() <= 1.0


def test_tfds_eval_mocked():
    rng = np.random.default_rng(0)
    hrs = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(26, 30, 3), (41, 20, 3)]]

    def as_dataset(self, *args, **kwargs):
        lrs = [h[::4, ::4] for h in hrs]
        return tf.data.Dataset.from_generator(
            lambda: ({"hr": h, "lr": lr} for h, lr in zip(hrs, lrs, strict=True)),
            output_signature={k: tf.TensorSpec((None, None, 3), tf.uint8) for k in ("hr", "lr")})

    with warnings.catch_warnings(), tfds.testing.mock_data(as_dataset_fn=as_dataset):
        warnings.simplefilter("ignore")
        images = sr_eval_images("tfds:div2k/bicubic_x4", 4)
    assert [name for name, _ in images] == ["0000", "0001"]
    np.testing.assert_array_equal(images[0][1], hrs[0][:24, :28])
    np.testing.assert_array_equal(images[1][1], hrs[1][:40, :20])


def test_tfds_unknown_name():
    with pytest.raises(UserError, match="cannot load TFDS dataset 'no_such_dataset_zz'"):
        sr_eval_images("tfds:no_such_dataset_zz", 4)


def test_scaled_pixels_are_the_formula_in_aligned_memory_tensorflow_can_share():
    """`scale_pixels`: `pixels * (high - low) / 255 + low` in float32, bit for bit, in a 64-byte
    aligned array that `shared_tensor` hands to TensorFlow without a copy (a later write to
    the array shows in the tensor); arrays it cannot share are copied."""
    from zoo.data.memory import ALIGNMENT, aligned_empty, shared_tensor
    from zoo.data.sources import scale_pixels

    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3, 1), dtype=np.uint8)
    for low, high in ((0.0, 1.0), (-1.0, 1.0), (1.0, 0.0)):
        scaled = scale_pixels(pixels, (low, high))
        expected = pixels.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
        np.testing.assert_array_equal(scaled, expected)
        assert scaled.dtype == np.float32 and scaled.ctypes.data % ALIGNMENT == 0
    for shape, dtype in (((3, 5), np.float32), ((4,), np.int32), ((2, 3, 7), np.uint8)):
        assert aligned_empty(shape, dtype).ctypes.data % ALIGNMENT == 0
    shared = shared_tensor(scaled)
    np.testing.assert_array_equal(shared.numpy(), scaled)
    scaled[0, 0, 0, 0] = 42.0  # the same memory
    assert float(shared[0, 0, 0, 0]) == 42.0
    unaligned = aligned_empty((65,), np.float32)[1:]  # 4 bytes past a 64-byte boundary
    unaligned[...] = 1.0
    read_only = np.ones((2, 3), np.float32)
    read_only.flags.writeable = False
    for array in (unaligned, read_only, scaled[:, ::2], np.zeros((0, 3), np.float32)):
        copied = shared_tensor(array)  # copied, not shared (TensorFlow would abort on the first)
        np.testing.assert_array_equal(copied.numpy(), array)
        assert copied.dtype == tf.float32
    copied = shared_tensor(unaligned)
    unaligned[0] = 7.0
    assert float(copied[0]) == 1.0
