"""Faithfulness of the image explainers: the deletion test on MNIST test images; prints a table.

For a trained hybrid classifier (zoo.models.som_rbf_attention, `python -m train som_rbf_attention`)
and each of N MNIST test images, the explained scalar is the probability of the predicted class
(zoo/explain/image.py). Each explainer (integrated gradients, occlusion, row attention, and
LIME and Kernel SHAP with --samples copies / coalitions on two kinds of players: quickshift
superpixels with lime's defaults, and the grid of 49 4x4 patches, which `zoo explain
--segmentation auto` uses on digits) ranks
the 49 non-overlapping 4x4 patches of the 28x28 image; blacking out its top k patches should lower
that probability more than blacking out k random patches (the mean of --draws seeded draws per
image and k). The table gives, per explainer and k, the mean drop over the images for the top-k
and the random patches, and the share of images where the top-k patches lowered it more.

Without --run, the script first trains the recipe's default preset
(`python -m train som_rbf_attention --run-dir DIR`); the whole script (training included) holds
the lock file --lock (default /tmp/zoo_heavy.lock, as `flock` would), so run it plainly:

    python tools/bench_explain_images.py [--run RUN_DIR_OR_KERAS] [--images 1000] [--steps 32]
                                         [--samples 1000] [--seed 0] [--ks 1,2,4,8] [--draws 10]
                                         [--json OUT.json]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.bench_text import cpu_name  # noqa: E402
RECIPE = "som_rbf_attention"


@contextlib.contextmanager
def locked(path: str):
    """Hold an exclusive flock on `path` (the lock `flock PATH command` takes); "" holds none."""
    if not path:
        yield
        return
    with open(path, "a") as handle:
        print(f"waiting for the lock {path} ...", file=sys.stderr, flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def train_default() -> tuple[Path, float]:
    """Train the recipe's default preset into a fresh run directory; (run dir, seconds)."""
    run = ROOT / "runs" / RECIPE / time.strftime("bench-explain-%Y%m%d-%H%M%S")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "train", RECIPE, "--run-dir", str(run)], cwd=ROOT, check=True)
    return run, time.perf_counter() - start


PLAYER_METHODS = ("lime_quickshift", "shap_quickshift", "lime_grid", "shap_grid")


def player_maps(target, image: np.ndarray, label: int, samples: int, seed: int) -> tuple[dict, dict, dict]:
    """LIME and SHAP maps on quickshift superpixels and on the 4x4 grid, seconds per method,
    and per method its players, SHAP's efficiency error and exactness."""
    from zoo.explain import superpixels
    from zoo.explain.image import coalition_value, patch_size
    from zoo.explain.shap import kernel_shap

    maps, seconds, extra = {}, {}, {}
    for players in ("quickshift", "grid"):
        start = time.perf_counter()
        if players == "grid":
            segments = superpixels.grid_segments(*image.shape[:2], patch_size(*image.shape[:2]))
        else:
            segments, _ = superpixels.segment(image, patch_size(*image.shape[:2]), "quickshift")
        split = time.perf_counter() - start  # the segmentation counts towards both methods
        count = int(segments.max()) + 1
        value = coalition_value(target, image, segments, np.zeros_like(image), label, 64)
        start = time.perf_counter()
        lime = superpixels.lime_image(value, count, samples, seed)
        seconds[f"lime_{players}"] = time.perf_counter() - start + split
        start = time.perf_counter()
        shap = kernel_shap(value, count, samples, seed)
        seconds[f"shap_{players}"] = time.perf_counter() - start + split
        maps[f"lime_{players}"] = superpixels.per_pixel(lime.weights, segments)
        maps[f"shap_{players}"] = superpixels.per_pixel(shap.values, segments)
        extra[players] = {"players": count, "efficiency_error": shap.efficiency_error, "exact": shap.exact}
    return maps, seconds, extra


def explain_one(target, model, image: np.ndarray, steps: int, ks, draws: int, seed, samples: int,
                method_seed: int) -> tuple[dict, dict]:
    """The deletion test of IG, occlusion, row attention, LIME and SHAP on one image, and seconds
    per method."""
    from zoo.explain.image import deletion_test, integrated_gradients, occlusion

    probabilities, rows = model.predict_proba(image[None])
    label, seconds = int(np.argmax(probabilities[0])), {}
    start = time.perf_counter()
    attribution, f_x, f_b = integrated_gradients(target.function, image, steps, label, batch_size=64)
    seconds["ig"] = time.perf_counter() - start
    start = time.perf_counter()
    heat, _ = occlusion(target.function, image, label)
    seconds["occlusion"] = time.perf_counter() - start
    maps = {"ig": attribution.sum(axis=-1), "occlusion": heat,
            "attention": np.repeat(rows[0].astype(np.float64)[:, None], image.shape[1], axis=1)}
    more, more_seconds, extra = player_maps(target, image, label, samples, method_seed)
    maps.update(more)
    seconds.update(more_seconds)
    result = deletion_test(target.function, image, maps, label, seed, ks, draws)
    result["players"] = extra
    result["completeness_error"] = abs(float(attribution.sum()) - (f_x - f_b))
    result["f"] = f_x
    return result, seconds


def summarize(results: list[dict], methods: list[str]) -> dict:
    ks = results[0]["k"]
    table = {}
    for method in methods:
        top = np.array([r[method] for r in results])  # (N, len(ks))
        random = np.array([r["random"] for r in results])
        table[method] = {"k": ks, "top_drop": top.mean(0).tolist(), "random_drop": random.mean(0).tolist(),
                         "share_top_beats_random": (top > random).mean(0).tolist()}
    return table


def print_table(summary: dict, info: dict) -> None:
    print(f"\nDeletion test, {info['images']} MNIST test images (first of t10k), model {info['model']} "
          f"(accuracy on them {info['accuracy']:.4f}), {info['patches']} patches of {info['patch']}x{info['patch']}, "
          f"{info['draws']} random draws per image and k, seed {info['seed']}; CPU: {info['cpu']}")
    print(f"IG: black baseline, {info['steps']} trapezoid steps; mean completeness error "
          f"{info['completeness_error']:.2e} (max {info['completeness_error_max']:.2e}); mean predicted-class "
          f"probability {info['mean_f']:.4f}")
    print("\n| explainer | k | mean drop, top-k patches | mean drop, k random patches | images where top-k > random |")
    print("|---|---|---|---|---|")
    for method, row in summary.items():
        for j, k in enumerate(row["k"]):
            print(f"| {method} | {k} | {row['top_drop'][j]:.4f} | {row['random_drop'][j]:.4f} | "
                  f"{100 * row['share_top_beats_random'][j]:.1f}% |")
    print(f"LIME / SHAP: {info['samples']} copies / coalitions per image; quickshift superpixels per image: "
          f"mean {info['quickshift_players']['mean']:.2f}, min {info['quickshift_players']['min']}, "
          f"max {info['quickshift_players']['max']}; SHAP exact on {100 * info['shap_exact']['quickshift']:.1f}% "
          f"(quickshift) and {100 * info['shap_exact']['grid']:.1f}% (grid) of the images; SHAP efficiency "
          f"error max {info['shap_efficiency_error_max']:.2e}")
    print("\nseconds per image: " + ", ".join(f"{m} {s:.3f}" for m, s in info["seconds"].items()))


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a run directory or .keras file of som_rbf_attention (default: train one)")
    parser.add_argument("--images", type=int, default=1000, help="MNIST test images (the first ones)")
    parser.add_argument("--steps", type=int, default=32, help="integrated-gradients steps")
    parser.add_argument("--samples", type=int, default=1000, help="LIME copies and SHAP coalitions per image "
                        "(default 1000, lime_image's default)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the random patches, LIME and SHAP (image i: "
                        "seed + i)")
    parser.add_argument("--ks", default="1,2,4,8", help="patches removed, comma-separated")
    parser.add_argument("--draws", type=int, default=10, help="random draws per image and k")
    parser.add_argument("--lock", default="/tmp/zoo_heavy.lock", help='lock file held throughout ("": none)')
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    return parser.parse_args(argv)


def bench(args: argparse.Namespace) -> dict:
    import zoo
    import zoo.models.som_rbf_attention  # noqa: F401  (registers the class for loading)
    from zoo.data import load_images
    from zoo.explain.image import patch_size, target_of

    run, train_seconds = (Path(args.run), None) if args.run else train_default()
    model = zoo.load(run, compile=False)
    images, labels, _ = load_images("assets:mnist", "test", 1, None, limit=args.images)
    target, ks = target_of(model), [int(k) for k in args.ks.split(",")]
    results, seconds = [], {"ig": 0.0, "occlusion": 0.0, **{m: 0.0 for m in PLAYER_METHODS}}
    start = time.perf_counter()
    for i, image in enumerate(images):
        result, spent = explain_one(target, model, image, args.steps, ks, args.draws, [args.seed, i], args.samples,
                                    args.seed + i)
        results.append(result)
        seconds = {m: seconds[m] + spent[m] for m in seconds}
        if (i + 1) % 25 == 0:
            print(f"{i + 1}/{len(images)} images, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    predicted = np.argmax(model.predict_proba(images)[0], axis=1)
    errors = [r["completeness_error"] for r in results]
    quick = [r["players"]["quickshift"]["players"] for r in results]
    info = {"model": str(run), "train_seconds": train_seconds, "images": len(images), "steps": args.steps,
            "accuracy": float(np.mean(predicted == labels)), "patch": patch_size(28, 28),
            "patches": results[0]["patches"], "draws": args.draws, "seed": args.seed, "cpu": cpu_name(),
            "completeness_error": float(np.mean(errors)), "completeness_error_max": float(np.max(errors)),
            "mean_f": float(np.mean([r["f"] for r in results])), "samples": args.samples,
            "quickshift_players": {"mean": float(np.mean(quick)), "min": int(np.min(quick)), "max": int(np.max(quick))},
            "shap_exact": {p: float(np.mean([r["players"][p]["exact"] for r in results])) for p in ("quickshift", "grid")},
            "shap_efficiency_error_max": max(r["players"][p]["efficiency_error"] for r in results
                                             for p in ("quickshift", "grid")),
            "seconds": {m: s / len(images) for m, s in seconds.items()},
            "total_seconds": time.perf_counter() - start}
    return {"info": info, "deletion": summarize(results, ["ig", "occlusion", "attention", *PLAYER_METHODS])}


def main(argv=None) -> int:
    args = parse(argv)
    with locked(args.lock):
        report = bench(args)
    print_table(report["deletion"], report["info"])
    if report["info"]["train_seconds"]:
        print(f"trained {report['info']['model']} in {report['info']['train_seconds']:.0f} s")
    print(f"explained in {report['info']['total_seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
