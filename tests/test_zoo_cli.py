"""`python -m zoo eval | upscale | sample | predict`: results, image modes, tiling, and every
error a user can cause.

Each subprocess costs a TensorFlow import (~3 s on two cores), so the subprocess tests cover the
real entry point once per path (eval JSON, eval table, upscale into a folder, upscale to a file,
a fresh-process load, two failures); `sample`, `predict` and the full list of user errors run
in-process through `zoo.__main__.main`, which is the same code minus the interpreter start (the
toy sampler and classifiers below are registered in this process only).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from helpers import (assert_main_user_error, assert_user_error, run_cli, run_here, run_main, run_python,
                     stderr_lines)
from PIL import Image

import zoo
from zoo.cli.upscale import output_paths
from zoo.data import bicubic_downscale, bicubic_upscale, crop_to_multiple, read_image
from zoo.errors import UserError
from zoo.evaluation.sr import evaluate_sr
from zoo.evaluation.metrics import psnr_y, ssim_y
from zoo.models import SRGAN, build_sr_discriminator, build_sr_generator
from zoo.visualize import image_grid

SIZE = (37, 53)  # (H, W) of the upscale inputs: odd, and not a multiple of any tile
MODES = {"rgb.png": "RGB", "rgba.png": "RGBA", "gray.png": "L", "la.png": "LA", "pal.png": "RGBA",
         "cmyk.jpg": "RGB", "g16.png": "L"}  # input -> mode of the output


def _smooth(shape, seed, channels=3):
    """A smooth random uint8 image (bicubic blow-up of a coarse grid), like a photo."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (5, 6, channels), dtype=np.uint8)
    image = Image.fromarray(coarse[..., 0] if channels == 1 else coarse)
    return np.asarray(image.resize(shape[::-1], Image.BICUBIC))


def _write_inputs(folder: Path) -> None:
    """One image per kind of mode `python -m zoo upscale` handles."""
    rgb, alpha = _smooth(SIZE, 1), _smooth(SIZE, 2, channels=1)
    Image.fromarray(rgb).save(folder / "rgb.png")
    Image.fromarray(np.dstack([rgb, alpha])).save(folder / "rgba.png")
    Image.fromarray(rgb).convert("L").save(folder / "gray.png")
    Image.fromarray(np.dstack([rgb[..., 0], alpha])).save(folder / "la.png")
    palette = Image.fromarray(rgb).quantize(16)
    palette.info["transparency"] = 0
    palette.save(folder / "pal.png", transparency=0)
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(rgb[..., 1].astype(np.uint16) * 257).save(folder / "g16.png")  # 16-bit gray


@keras.saving.register_keras_serializable(package="zoo_test")
class ToySampler(keras.Model):
    """A generative model in miniature: `sample` maps seeded noise (plus a one-hot label when
    conditional) through one Dense layer to uint8 images; `interpolate` walks between two points."""

    def __init__(self, latent=4, shape=(6, 5, 3), num_classes=0, **kwargs):
        super().__init__(**kwargs)
        self.latent, self.image_shape, self.num_classes = latent, tuple(shape), num_classes
        self.conditional = num_classes > 0
        self.dense = keras.layers.Dense(int(np.prod(shape)), activation="sigmoid")

    def call(self, z):
        return keras.ops.reshape(self.dense(z), (-1, *self.image_shape))

    def _images(self, z: np.ndarray) -> np.ndarray:
        return np.round(keras.ops.convert_to_numpy(self(z.astype("float32"))) * 255).astype(np.uint8)

    def _inputs(self, noise: np.ndarray, label) -> np.ndarray:
        onehot = np.zeros((len(noise), self.num_classes))
        if label is not None:
            onehot[:, label] = 3.0
        return np.concatenate([noise, onehot], axis=1)

    def sample(self, n, seed=None, label=None):
        return self._images(self._inputs(np.random.default_rng(seed).normal(size=(n, self.latent)), label))

    def interpolate(self, steps, seed=None):
        ends = np.random.default_rng(seed).normal(size=(2, self.latent))
        t = np.linspace(0, 1, steps)[:, None]
        return self._images(self._inputs((1 - t) * ends[0] + t * ends[1], None))

    def get_config(self):
        return {**super().get_config(), "latent": self.latent, "shape": self.image_shape,
                "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="zoo_test")
class ToyTextClassifier(keras.Model):
    """A text classifier in miniature: "long" above 12 characters; attention on the longest words."""

    def call(self, x):
        return x

    def predict_texts(self, texts):
        results = []
        for text in texts:
            p = min(len(text) / 24, 1.0)
            words = sorted(text.split(), key=len, reverse=True)[:2]
            results.append({"label": "long" if len(text) > 12 else "short",
                            "probabilities": {"short": np.float32(1 - p), "long": np.float32(p)},
                            "attention": [(word, len(word) / len(text)) for word in words]})
        return results


@keras.saving.register_keras_serializable(package="zoo_test")
class ToySampleClassifier(keras.Model):
    """A sample classifier in miniature: "pos" when the values sum above zero."""

    def call(self, x):
        return x

    def predict_samples(self, samples):
        assert samples.ndim == 2 and samples.dtype == np.float32
        return [{"label": "pos" if row.sum() > 0 else "neg",
                 "probabilities": {"neg": float(row.sum() <= 0), "pos": float(row.sum() > 0)}}
                for row in samples]


def _write_toy_models(root: Path) -> None:
    keras.utils.set_random_seed(1)
    for name, model in (("sampler", ToySampler()), ("conditional", ToySampler(num_classes=3))):
        model(np.zeros((1, model.latent + model.num_classes), "float32"))
        model.save(root / f"{name}.keras")
    for name, model in (("texts", ToyTextClassifier()), ("samples", ToySampleClassifier())):
        model(np.zeros((1, 2), "float32"))
        model.save(root / f"{name}.keras")


def _write_bad_models(root: Path) -> None:
    good = (root / "run" / "model.keras").read_bytes()
    (root / "text.keras").write_text("this is not a model")
    (root / "trunc.keras").write_bytes(good[: len(good) // 2])
    with zipfile.ZipFile(root / "notmodel.keras", "w") as archive:
        archive.writestr("readme.txt", "a zip, but not a Keras model")
    (root / "model.h5").write_bytes(good)
    (root / "empty_run").mkdir()
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    plain.save(root / "plain.keras")


@pytest.fixture(scope="module")
def w(tmp_path_factory) -> SimpleNamespace:
    """A tiny saved SRGAN, evaluation data, inputs of every mode and broken files."""
    root = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(0)
    model = SRGAN(build_sr_generator(4, filters=8, blocks=1), build_sr_discriminator(8, stages=2, dense=16),
                  scale=4)
    model.compile()
    model.build_optimizers()
    model(np.zeros((1, 8, 8, 3), "float32"))  # build, or Keras warns that it is saved unbuilt
    (root / "run").mkdir()
    model.save(root / "run" / "model.keras")
    for folder in ("data", "inputs", "out", "bad_data", "empty_data"):
        (root / folder).mkdir()
    Image.fromarray(_smooth((44, 40), 3)).save(root / "data" / "a.png")
    Image.fromarray(_smooth((37, 53), 4)).save(root / "data" / "b.png")  # cropped to 36x52
    Image.fromarray(_smooth((44, 40), 5)).save(root / "bad_data" / "ok.png")
    (root / "bad_data" / "broken.png").write_text("not an image")
    _write_inputs(root / "inputs")
    (root / "inputs" / "text.png").write_text("not an image")
    good_png = (root / "inputs" / "rgb.png").read_bytes()
    (root / "inputs" / "trunc.png").write_bytes(good_png[: len(good_png) // 2])
    (root / "inputs" / "dup").mkdir()
    (root / "inputs" / "dup" / "rgb.png").write_bytes(good_png)
    (root / "existing.png").write_bytes(b"keep me")
    (root / "blank.txt").write_text("\n  \n")
    _write_bad_models(root)
    _write_toy_models(root)
    return SimpleNamespace(root=root, model=model, model_file=root / "run" / "model.keras",
                           run=root / "run", data=root / "data", inputs=root / "inputs", out=root / "out")


def _expected_scores(model, folder: Path, tile=128, overlap=16) -> dict:
    """What eval must report, computed here step by step."""
    scores = {}
    for path in sorted(folder.iterdir()):
        hr = crop_to_multiple(read_image(path), 4)
        lr = bicubic_downscale(hr, 4).numpy()
        sr, bic = model.upscale(lr, tile=tile, overlap=overlap), bicubic_upscale(lr, 4).numpy()
        scores[path.name] = {"model": {"psnr_y": psnr_y(sr, hr, 4), "ssim_y": ssim_y(sr, hr, 4)},
                             "bicubic": {"psnr_y": psnr_y(bic, hr, 4), "ssim_y": ssim_y(bic, hr, 4)}}
    return scores


# ----------------------------------------------------------------------------- subprocess: results

def test_eval_json(w):
    result = run_here(["zoo", "eval", w.model_file, "--data", w.data, "--json"])
    assert result.returncode == 0, result.stderr
    assert stderr_lines(result) == [], result.stderr
    report = json.loads(result.stdout)  # stdout is exactly one JSON object
    assert set(report) == {"scale", "n_images", "data", "lr_data", "channels", "model", "bicubic", "images"}
    assert report["lr_data"] is None and report["channels"] == 3
    assert report["scale"] == 4 and report["n_images"] == 2 and report["data"] == str(w.data)
    expected = _expected_scores(w.model, w.data)
    assert [row["name"] for row in report["images"]] == list(expected)
    for row in report["images"]:
        want = expected[row["name"]]
        assert row["bicubic"] == pytest.approx(want["bicubic"], abs=1e-12)
        assert row["model"] == pytest.approx(want["model"], abs=1e-3)
    for kind in ("model", "bicubic"):
        for key in ("psnr_y", "ssim_y"):
            mean = np.mean([s[kind][key] for s in expected.values()])
            assert report[kind][key] == pytest.approx(mean, abs=1e-3)
    assert report["bicubic"]["psnr_y"] > report["model"]["psnr_y"], "an untrained net is worse"


def test_eval_run_dir_table(w):
    result = run_here(["zoo", "eval", w.run, "--data", w.data])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines if line and line[0] in "abm"}
    assert set(rows) == {"a.png", "b.png", "mean"}, result.stdout
    expected = _expected_scores(w.model, w.data)
    assert rows["a.png"][2] == f"{expected['a.png']['bicubic']['psnr_y']:.2f}"
    mean = np.mean([s["bicubic"]["psnr_y"] for s in expected.values()])
    assert rows["mean"][2] == f"{mean:.2f}"
    assert "studio-range Y" in result.stdout


def test_upscale_every_mode_into_folder_tiled(w):
    names = list(MODES)
    result = run_here(["zoo", "upscale", w.model_file, *[w.inputs / n for n in names], "-o", w.out,
                      "--tile", "24", "--overlap", "8"])  # 24-pixel tiles: many tiles per image
    assert result.returncode == 0, result.stderr
    assert stderr_lines(result) == [], result.stderr
    for name in names:
        target = w.out / f"{Path(name).stem}_x4.png"
        assert str(target) in result.stdout
        with Image.open(target) as image:
            assert image.size == (SIZE[1] * 4, SIZE[0] * 4) and image.mode == MODES[name], name
            result_pixels = np.asarray(image)
        source = read_image(w.inputs / name)
        if source.shape[-1] in (2, 4):  # alpha is plain bicubic
            alpha = bicubic_upscale(source[..., -1:], 4).numpy()[..., 0]
            np.testing.assert_array_equal(result_pixels[..., -1], alpha)
    assert sorted(p.name for p in w.out.iterdir()) == sorted(f"{Path(n).stem}_x4.png" for n in names)
    # 24-pixel tiles with an 8-pixel overlap (>= the receptive field) give the untiled image.
    untiled = w.model.upscale(read_image(w.inputs / "rgb.png"), tile=128, overlap=16)
    np.testing.assert_array_equal(np.asarray(Image.open(w.out / "rgb_x4.png")), untiled)


def test_upscale_one_file_untiled_equals_tiled(w):
    target = w.root / "single.png"
    result = run_here(["zoo", "upscale", w.run, w.inputs / "rgb.png", "-o", target])
    assert result.returncode == 0, result.stderr
    assert f"-> {target}" in result.stdout
    untiled = np.asarray(Image.open(target))
    expected = w.model.upscale(read_image(w.inputs / "rgb.png"), tile=128, overlap=16)
    np.testing.assert_array_equal(untiled, expected)
    tiled = w.model.upscale(read_image(w.inputs / "rgb.png"), tile=20, overlap=8)
    np.testing.assert_array_equal(tiled, untiled)


def test_load_model_in_fresh_process(w):
    code = ("import sys, numpy as np, keras, zoo\n"
            "m = keras.saving.load_model(sys.argv[1])\n"
            "x = np.arange(9 * 11 * 3, dtype=np.uint8).reshape(9, 11, 3)\n"
            "y = m.upscale(x)\n"
            "print(type(m).__name__, m.scale, y.shape, y.dtype, int(y.astype(np.int64).sum()))\n")
    result = run_python(["-c", code, w.model_file])
    assert result.returncode == 0, result.stderr
    x = np.arange(9 * 11 * 3, dtype=np.uint8).reshape(9, 11, 3)
    y = w.model.upscale(x)
    assert result.stdout.split() == ["SRGAN", "4", "(36,", "44,", "3)", "uint8",
                                     str(int(y.astype(np.int64).sum()))]


# ----------------------------------------------------------------------------- subprocess: failures

def test_bad_model_file_through_the_real_entry_point(w):
    result = run_cli(["zoo", "eval", w.root / "text.keras", "--data", w.data])
    assert_user_error(result, "text.keras", "not a Keras model archive")
    assert result.stdout == ""


def test_usage_error_through_the_real_entry_point(w):
    result = run_cli(["zoo", "upscale", w.model_file, w.inputs / "rgb.png"])  # no -o
    assert_user_error(result, "-o/--output", "--help")


# ----------------------------------------------------------------------------- in-process: errors



def _eval(w, model, data=None, *flags):
    return ["eval", model, "--data", data or w.data, *flags]


ERRORS = {  # name: (argv of w, fragments the one error line must contain)
    "missing model": (lambda w: _eval(w, w.root / "nope.keras"), ["nope.keras", "does not exist"]),
    "text as .keras": (lambda w: _eval(w, w.root / "text.keras"), ["text.keras", "not a Keras model"]),
    "truncated .keras": (lambda w: _eval(w, w.root / "trunc.keras"), ["trunc.keras", "save or copy"]),
    "zip, not a model": (lambda w: _eval(w, w.root / "notmodel.keras"),
                         ["cannot load model", "notmodel.keras", "config.json"]),
    "run dir without model": (lambda w: _eval(w, w.root / "empty_run"), ["empty_run", "no model.keras"]),
    "legacy .h5": (lambda w: _eval(w, w.root / "model.h5"), ["model.h5", "not a .keras file"]),
    "model without upscale": (lambda w: _eval(w, w.root / "plain.keras"),
                              ["plain.keras (Sequential) cannot be evaluated", "none of the methods",
                               "upscale"]),
    "eval on a sampler": (lambda w: _eval(w, w.root / "sampler.keras"),
                          ["(ToySampler) cannot be evaluated", "python -m zoo sample", "upscale",
                           "samples are 28x28x1 images", "train_fcd_classifier.py"]),
    "missing data": (lambda w: _eval(w, w.model_file, w.root / "nodata"), ["nodata", "does not exist"]),
    "empty data": (lambda w: _eval(w, w.model_file, w.root / "empty_data"), ["holds no"]),
    "corrupt data image": (lambda w: _eval(w, w.model_file, w.root / "bad_data"), ["broken.png"]),
    "scale mismatch": (lambda w: _eval(w, w.model_file, None, "--scale", "2"), ["--scale 2", "x4"]),
    "missing input": (lambda w: ["upscale", w.model_file, w.inputs / "nope.png", "-o", w.root / "o.png"],
                      ["nope.png", "does not exist"]),
    "text as .png": (lambda w: ["upscale", w.model_file, w.inputs / "text.png", "-o", w.root / "o.png"],
                     ["cannot read image", "text.png"]),
    "truncated png": (lambda w: ["upscale", w.model_file, w.inputs / "trunc.png", "-o",
                                 w.root / "existing.png"], ["cannot read image", "trunc.png"]),
    "output folder missing": (lambda w: ["upscale", w.model_file, w.inputs / "rgb.png", "-o",
                                         w.root / "nodir" / "o.png"], ["nodir", "does not exist"]),
    "several inputs, -o a file": (lambda w: ["upscale", w.model_file, w.inputs / "rgb.png",
                                             w.inputs / "gray.png", "-o", w.root / "o.png"],
                                  ["must be an existing folder"]),
    "unknown output format": (lambda w: ["upscale", w.model_file, w.inputs / "rgb.png", "-o",
                                         w.root / "o.xyz"], ["o.xyz", "unknown image format"]),
    "alpha into JPEG": (lambda w: ["upscale", w.model_file, w.inputs / "rgba.png", "-o",
                                   w.root / "o.jpg"], ["o.jpg", "RGBA"]),
    "upscale without upscale": (lambda w: ["upscale", w.root / "plain.keras", w.inputs / "rgb.png",
                                           "-o", w.root / "o.png"], ["upscale"]),
    "same output twice": (lambda w: ["upscale", w.model_file, w.inputs / "rgb.png",
                                     w.inputs / "dup" / "rgb.png", "-o", w.root / "empty_data"],
                          ["rgb_x4.png"]),
    "one bad among several": (lambda w: ["upscale", w.model_file, w.inputs / "rgb.png",
                                         w.inputs / "text.png", "-o", w.root / "empty_data"],
                              ["text.png"]),
    "upscale on a sampler": (lambda w: ["upscale", w.root / "sampler.keras", w.inputs / "rgb.png",
                                        "-o", w.root / "o.png"],
                             ["(ToySampler) cannot upscale", "python -m zoo sample", "super-resolution"]),
    "sample on an SR model": (lambda w: ["sample", w.model_file, "-o", w.root / "o.png"],
                              ["(SRGAN) cannot sample", "python -m zoo upscale", "`sample`"]),
    "sample on a classifier": (lambda w: ["sample", w.root / "texts.keras", "-o", w.root / "o.png"],
                               ["(ToyTextClassifier) cannot sample", "python -m zoo predict"]),
    "label, unconditional": (lambda w: ["sample", w.root / "sampler.keras", "--label", "1", "-o",
                                        w.root / "o.png"], ["ToySampler", "not class-conditional",
                                                            "drop --label"]),
    "label out of range": (lambda w: ["sample", w.root / "conditional.keras", "--label", "3", "-o",
                                      w.root / "o.png"], ["--label 3", "0 to 2"]),
    "label and interpolate": (lambda w: ["sample", w.root / "conditional.keras", "--label", "1",
                                         "--interpolate", "-o", w.root / "o.png"], ["--interpolate"]),
    "sample -n 0": (lambda w: ["sample", w.root / "sampler.keras", "-n", "0", "-o", w.root / "o.png"],
                    ["-n 0"]),
    "sample to unknown format": (lambda w: ["sample", w.root / "sampler.keras", "-o", w.root / "o.xyz"],
                                 ["o.xyz", "unknown image format"]),
    "sample to missing folder": (lambda w: ["sample", w.root / "sampler.keras", "-o",
                                            w.root / "nodir" / "o.png"], ["nodir", "does not exist"]),
    "sample without -o": (lambda w: ["sample", w.root / "sampler.keras"], ["-o/--output"]),
    "predict without input": (lambda w: ["predict", w.root / "texts.keras"], ["nothing to predict"]),
    "predict, binary file": (lambda w: ["predict", w.root / "texts.keras", "--file", w.model_file],
                             ["cannot read --file", "model.keras", "UTF-8"]),
    "predict, blank file": (lambda w: ["predict", w.root / "texts.keras", "--file", w.root / "blank.txt"],
                            ["nothing to predict"]),
    "predict, missing file": (lambda w: ["predict", w.root / "texts.keras", "--file", w.root / "no.txt"],
                              ["no.txt", "does not exist"]),
    "predict on an SR model": (lambda w: ["predict", w.model_file, "a text"],
                               ["(SRGAN) cannot predict", "python -m zoo upscale", "predict_texts"]),
    "predict, text for samples": (lambda w: ["predict", w.root / "samples.keras", "1,2", "good film"],
                                  ["'good film'", "numbers"]),
    "predict, ragged samples": (lambda w: ["predict", w.root / "samples.keras", "1,2", "1,2,3"],
                                ["differ in length"]),
    "no arguments": (lambda w: [], ["COMMAND"]),
    "eval without --data": (lambda w: ["eval", w.model_file], ["--data"]),
    "unknown flag": (lambda w: _eval(w, w.model_file, None, "--bogus"), ["--bogus"]),
    "tile zero": (lambda w: ["upscale", w.model_file, w.inputs / "rgb.png", "-o", w.root / "o.png",
                             "--tile", "0"], ["--tile 0"]),
    "overlap too big": (lambda w: _eval(w, w.model_file, None, "--tile", "32", "--overlap", "16"),
                        ["--overlap 16"]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_user_errors(w, capsys, case):
    make_argv, fragments = ERRORS[case]
    listing = lambda: [sorted(p.name for p in f.iterdir()) for f in (w.root, w.root / "empty_data")]  # noqa: E731
    before = listing()
    assert_main_user_error(make_argv(w), capsys, *fragments)
    assert listing() == before, "nothing written"
    assert (w.root / "existing.png").read_bytes() == b"keep me"


# ----------------------------------------------------------------------------- in-process: units

HELP = {"--help": ["eval", "upscale", "sample", "predict", "Exit codes"], "eval": ["--data", "--tile"],
        "upscale": ["-o OUT", "--tile"], "sample": ["-n N", "--seed", "--label", "--interpolate"],
        "predict": ["TEXT", "--file", "--json"]}


@pytest.mark.parametrize("command", list(HELP))
def test_help(capsys, command):
    code, out, _ = run_main(["--help"] if command == "--help" else [command, "--help"], capsys)
    assert code == 0 and "usage: python -m zoo" in out
    for fragment in HELP[command]:
        assert fragment in out, (command, fragment)
    assert ("--data" in out) == (command == "eval") and ("--tile" in out) == (command in ("eval", "upscale"))


def test_read_input_modes(w):
    channels = {name: read_image(w.inputs / name).shape[-1] for name in MODES}
    assert channels == {"rgb.png": 3, "rgba.png": 4, "gray.png": 1, "la.png": 2, "pal.png": 4,
                        "cmyk.jpg": 3, "g16.png": 1}
    g16 = read_image(w.inputs / "g16.png")[..., 0]
    np.testing.assert_array_equal(g16, _smooth(SIZE, 1)[..., 1])  # 16-bit scaled back to 8
    Image.fromarray(np.zeros((3, 4), np.uint8)).convert("P").save(w.root / "opaque_pal.png")
    assert read_image(w.root / "opaque_pal.png").shape == (3, 4, 3)
    (w.root / "opaque_pal.png").unlink()


def test_read_input_applies_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "phone.jpg", exif=exif)
    assert read_image(tmp_path / "phone.jpg").shape == (6, 4, 3)


def test_output_paths(tmp_path):
    assert output_paths(["a/x.png"], str(tmp_path / "y.jpg"), 4) == [tmp_path / "y.jpg"]
    assert output_paths(["a/x.png"], str(tmp_path), 3) == [tmp_path / "x_x3.png"]
    assert output_paths(["a/x.png", "b/y.jpg"], str(tmp_path), 2) == [tmp_path / "x_x2.png",
                                                                      tmp_path / "y_x2.png"]
    with pytest.raises(UserError, match="existing folder"):
        output_paths(["x.png", "y.png"], str(tmp_path / "nope"), 4)


# ----------------------------------------------------------------------------- in-process: sample

def _sample(w, capsys, model, *flags):
    code, out, err = run_main(["sample", w.root / f"{model}.keras", *flags], capsys)
    assert code == 0, err
    return out


def test_sample_writes_the_grid_of_the_models_samples(w, capsys, tmp_path):
    out = _sample(w, capsys, "sampler", "-n", "5", "-o", tmp_path / "grid.png", "--seed", "3")
    assert f"-> {tmp_path / 'grid.png'} (19x14)" in out and out.count("\n") == 1
    with Image.open(tmp_path / "grid.png") as image:  # 5 images of 6x5: 3 columns, 2 rows, gutter 2
        assert image.size == (3 * 5 + 2 * 2, 2 * 6 + 2) and image.mode == "RGB"
        grid = np.asarray(image)
    model = zoo.load(w.root / "sampler.keras", compile=False)
    expected = model.sample(5, seed=3)
    np.testing.assert_array_equal(grid, image_grid(expected))
    np.testing.assert_array_equal(grid[8:14, 7:12], expected[4])  # the fifth: row 2, column 2
    assert (grid[8:, 14:] == 255).all(), "the sixth cell stays empty"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"], "no temporary file left"


def test_sample_seed_is_repeatable_byte_for_byte(w, capsys, tmp_path):
    for name, seed in (("a.png", "7"), ("b.png", "7"), ("c.png", "8")):
        _sample(w, capsys, "sampler", "-n", "4", "-o", tmp_path / name, "--seed", seed)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "c.png").read_bytes()


def test_sample_label_and_interpolate(w, capsys, tmp_path):
    model = zoo.load(w.root / "conditional.keras", compile=False)
    _sample(w, capsys, "conditional", "-n", "4", "--label", "2", "--seed", "1", "-o", tmp_path / "l.png")
    labelled = np.asarray(Image.open(tmp_path / "l.png"))
    np.testing.assert_array_equal(labelled, image_grid(model.sample(4, seed=1, label=2)))
    assert not np.array_equal(labelled, image_grid(model.sample(4, seed=1)))
    out = _sample(w, capsys, "sampler", "-n", "6", "--interpolate", "--seed", "1", "-o", tmp_path / "i.png")
    assert "6-step interpolation" in out
    strip = np.asarray(Image.open(tmp_path / "i.png"))
    assert strip.shape == (6, 6 * 5 + 5 * 2, 3)  # one row
    sampler = zoo.load(w.root / "sampler.keras", compile=False)
    np.testing.assert_array_equal(strip, image_grid(sampler.interpolate(6, seed=1), cols=6))


# ----------------------------------------------------------------------------- in-process: predict

def test_predict_texts_lines_and_json(w, capsys, tmp_path):
    (tmp_path / "more.txt").write_text("third text from a file\n\n")
    argv = ["predict", w.root / "texts.keras", "tiny", "a rather long review",
            "--file", tmp_path / "more.txt"]
    code, out, err = run_main(argv, capsys)
    assert code == 0, err
    assert out.splitlines() == ["short 0.833  tiny  (attention: tiny 1.00)",
                                "long 0.833  a rather long review  (attention: rather 0.30, review 0.30)",
                                "long 0.917  third text from a file  (attention: third 0.23, text 0.18)"]
    code, out, err = run_main([*argv, "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["model"] == str(w.root / "texts.keras")
    assert [p["input"] for p in report["predictions"]] == ["tiny", "a rather long review",
                                                           "third text from a file"]
    first = report["predictions"][0]
    assert first["label"] == "short"
    assert first["probabilities"] == pytest.approx({"short": 5 / 6, "long": 1 / 6})
    assert first["attention"] == [["tiny", 1.0]]
    code, flags_first, err = run_main(["predict", w.root / "texts.keras", "--json", "tiny", "a rather long review",
                                    "--file", tmp_path / "more.txt"], capsys)  # texts after flags too
    assert code == 0 and json.loads(flags_first) == report, err


def test_predict_samples(w, capsys, tmp_path):
    np.save(tmp_path / "rows.npy", np.array([[-1.0, -2.0], [3.0, 0.5]]))
    code, out, err = run_main(["predict", w.root / "samples.keras", "1, 2", "--file", tmp_path / "rows.npy"],
                           capsys)
    assert code == 0, err
    assert out.splitlines() == ["pos 1.000  1, 2", f"neg 1.000  {tmp_path / 'rows.npy'}[0]",
                                f"pos 1.000  {tmp_path / 'rows.npy'}[1]"]
    code, out, err = run_main(["predict", w.root / "samples.keras", "--", "-3,0.5"], capsys)  # a row, no flag
    assert (code, out) == (0, "neg 1.000  -3,0.5\n"), err


# ----------------------------------------------------------------------------- in-process: eval dispatch

def test_eval_dispatch_table_takes_a_new_model_kind(w, capsys, monkeypatch):
    """A new kind of model plugs into `eval` with one row of the table."""
    import zoo.cli.eval as cli_eval

    row = cli_eval.Evaluation(can=lambda model: hasattr(model, "sample"), needs="a toy",
                              run=lambda model, args: {"kind": type(model).__name__, "data": args.data},
                              table=lambda report, args: f"toy table of {report['kind']}")
    monkeypatch.setattr(cli_eval, "EVALUATIONS", (*cli_eval.EVALUATIONS, row))
    code, out, err = run_main(_eval(w, w.root / "sampler.keras"), capsys)
    assert (code, out, err) == (0, "toy table of ToySampler\n", "")
    code, out, _ = run_main(_eval(w, w.root / "sampler.keras", None, "--json"), capsys)
    assert json.loads(out) == {"kind": "ToySampler", "data": str(w.data)}
    assert cli_eval.evaluations_for(w.model) == [cli_eval.EVALUATIONS[0]]  # SR only

    second = cli_eval.Evaluation(can=lambda model: True, needs="anything",
                                 run=lambda model, args: {"seed": args.seed},
                                 table=lambda report, args: f"seed {report['seed']}")
    monkeypatch.setattr(cli_eval, "EVALUATIONS", (row, second))
    code, out, err = run_main(_eval(w, w.root / "sampler.keras", None, "--seed", "3"), capsys)
    assert (code, out) == (0, "toy table of ToySampler\n\nseed 3\n"), err  # every row that applies
    code, out, _ = run_main(_eval(w, w.root / "sampler.keras", None, "--json"), capsys)
    assert json.loads(out) == {"kind": "ToySampler", "data": str(w.data), "seed": 0}  # one merged report


def test_eval_gray_images_in_process(w, capsys, tmp_path):
    for name in ("a.png", "b.png"):
        Image.open(w.data / name).convert("L").save(tmp_path / name)
    code, out, err = run_main(_eval(w, w.model_file, tmp_path, "--json"), capsys)
    assert code == 0, err
    report = json.loads(out)
    images = [(n, crop_to_multiple(read_image(tmp_path / n), 4)) for n in ("a.png", "b.png")]
    assert images[0][1].shape[-1] == 1
    expected = evaluate_sr(w.model, images, 4)
    for got, want in zip(report["images"], expected["images"]):
        assert got["name"] == want["name"]
        for kind in ("model", "bicubic"):
            assert got[kind] == pytest.approx(want[kind], abs=1e-9)
    sr = w.model.upscale(bicubic_downscale(images[0][1], 4).numpy())  # (H, W, 1)
    diff = (sr.astype(float) - images[0][1])[4:-4, 4:-4]
    assert report["images"][0]["model"]["psnr_y"] == pytest.approx(10 * np.log10(255**2 / np.mean(diff**2)))


# ----------------------------------------------------------------------------- in-process: overwriting

@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hardlink", "folder"])
def test_upscale_refuses_to_overwrite_an_input(w, capsys, tmp_path, monkeypatch, spelling):
    photo = tmp_path / "photo.png"
    photo.write_bytes((w.inputs / "rgb.png").read_bytes())
    original = photo.read_bytes()
    monkeypatch.chdir(tmp_path)
    inputs, out = ["photo.png"], {"same": str(photo), "dot": "./photo.png"}.get(spelling)
    if spelling == "symlink":
        (tmp_path / "link.png").symlink_to(photo)
        out = "link.png"
    if spelling == "hardlink":
        (tmp_path / "hard.png").hardlink_to(photo)
        out = str(tmp_path / "hard.png")
    if spelling == "folder":  # the result of one input would land on another input
        (tmp_path / "photo_x4.png").write_bytes(original)
        inputs, out = ["photo.png", "photo_x4.png"], "."
    before = sorted(p.name for p in tmp_path.iterdir())
    code, stdout, err = run_main(["upscale", w.model_file, *inputs, "-o", out], capsys)
    assert code == 2 and stdout == "" and len(err.splitlines()) == 1, err
    assert err.startswith("error: output ") and "is the input" in err and "choose another -o" in err
    assert photo.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if spelling == "symlink":
        assert (tmp_path / "link.png").is_symlink()
