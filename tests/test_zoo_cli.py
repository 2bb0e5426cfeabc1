"""`python -m zoo eval | upscale`: results, image modes, tiling, and every error a user can cause.

Each subprocess costs a TensorFlow import (~3 s on two cores), so the subprocess tests cover the
real entry point once per path (eval JSON, eval table, upscale into a folder, upscale to a file,
a fresh-process load, two failures); the full list of user errors runs in-process through
`zoo.__main__.main`, which is the same code minus the interpreter start.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from helpers import assert_user_error, run_cli, run_python, stderr_lines
from PIL import Image

from zoo.__main__ import main, output_paths, read_input
from zoo.data import bicubic_downscale, bicubic_upscale, crop_to_multiple, read_image
from zoo.errors import UserError
from zoo.metrics import psnr_y, ssim_y
from zoo.models import SRGAN, build_discriminator, build_generator

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
    model = SRGAN(build_generator(4, filters=8, blocks=1), build_discriminator(8, stages=2, dense=16),
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
    _write_bad_models(root)
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
    result = run_cli(["zoo", "eval", w.model_file, "--data", w.data, "--json"])
    assert result.returncode == 0, result.stderr
    assert stderr_lines(result) == [], result.stderr
    report = json.loads(result.stdout)  # stdout is exactly one JSON object
    assert set(report) == {"scale", "n_images", "data", "model", "bicubic", "images"}
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
    result = run_cli(["zoo", "eval", w.run, "--data", w.data])
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
    result = run_cli(["zoo", "upscale", w.model_file, *[w.inputs / n for n in names], "-o", w.out,
                      "--tile", "24", "--overlap", "8"])  # 24-pixel tiles: many tiles per image
    assert result.returncode == 0, result.stderr
    assert stderr_lines(result) == [], result.stderr
    for name in names:
        target = w.out / f"{Path(name).stem}_x4.png"
        assert str(target) in result.stdout
        with Image.open(target) as image:
            assert image.size == (SIZE[1] * 4, SIZE[0] * 4) and image.mode == MODES[name], name
            result_pixels = np.asarray(image)
        source = read_input(w.inputs / name)
        if source.shape[-1] in (2, 4):  # alpha is plain bicubic
            alpha = bicubic_upscale(source[..., -1:], 4).numpy()[..., 0]
            np.testing.assert_array_equal(result_pixels[..., -1], alpha)
    assert sorted(p.name for p in w.out.iterdir()) == sorted(f"{Path(n).stem}_x4.png" for n in names)


def test_upscale_one_file_untiled_equals_tiled(w):
    target = w.root / "single.png"
    result = run_cli(["zoo", "upscale", w.run, w.inputs / "rgb.png", "-o", target])
    assert result.returncode == 0, result.stderr
    assert f"-> {target}" in result.stdout
    untiled = np.asarray(Image.open(target))
    expected = w.model.upscale(read_input(w.inputs / "rgb.png"), tile=128, overlap=16)
    np.testing.assert_array_equal(untiled, expected)
    tiled_by_cli = w.out / "rgb_x4.png"  # from the tiled run above (8 >= receptive field)
    if tiled_by_cli.exists():
        np.testing.assert_array_equal(np.asarray(Image.open(tiled_by_cli)), untiled)
    tiled = w.model.upscale(read_input(w.inputs / "rgb.png"), tile=20, overlap=8)
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

def _main(argv, capsys) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


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
    "model without upscale": (lambda w: _eval(w, w.root / "plain.keras"), ["Sequential", "upscale"]),
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
    code, out, err = _main(make_argv(w), capsys)
    assert code == 2, (code, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert listing() == before, "nothing written"
    assert (w.root / "existing.png").read_bytes() == b"keep me"


# ----------------------------------------------------------------------------- in-process: units

@pytest.mark.parametrize("argv", [["--help"], ["eval", "--help"], ["upscale", "--help"]])
def test_help(capsys, argv):
    code, out, _ = _main(argv, capsys)
    assert code == 0 and "usage: python -m zoo" in out
    assert ("--data" in out) == (argv[0] == "eval") and ("--tile" in out) == (argv[0] != "--help")


def test_read_input_modes(w):
    channels = {name: read_input(w.inputs / name).shape[-1] for name in MODES}
    assert channels == {"rgb.png": 3, "rgba.png": 4, "gray.png": 1, "la.png": 2, "pal.png": 4,
                        "cmyk.jpg": 3, "g16.png": 1}
    g16 = read_input(w.inputs / "g16.png")[..., 0]
    np.testing.assert_array_equal(g16, _smooth(SIZE, 1)[..., 1])  # 16-bit scaled back to 8
    Image.fromarray(np.zeros((3, 4), np.uint8)).convert("P").save(w.root / "opaque_pal.png")
    assert read_input(w.root / "opaque_pal.png").shape == (3, 4, 3)
    (w.root / "opaque_pal.png").unlink()


def test_read_input_applies_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "phone.jpg", exif=exif)
    assert read_input(tmp_path / "phone.jpg").shape == (6, 4, 3)


def test_output_paths(tmp_path):
    assert output_paths(["a/x.png"], str(tmp_path / "y.jpg"), 4) == [tmp_path / "y.jpg"]
    assert output_paths(["a/x.png"], str(tmp_path), 3) == [tmp_path / "x_x3.png"]
    assert output_paths(["a/x.png", "b/y.jpg"], str(tmp_path), 2) == [tmp_path / "x_x2.png",
                                                                      tmp_path / "y_x2.png"]
    with pytest.raises(UserError, match="existing folder"):
        output_paths(["x.png", "y.png"], str(tmp_path / "nope"), 4)
