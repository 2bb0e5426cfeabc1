"""Masked-token pre-training, then fine-tuning, against no pre-training, with few labels, in any language.

    flock /tmp/zoo_heavy.lock python tools/bench_pretrain.py [--labels 1000] [--seeds 0,1,2]
        [--sample N] [--data FILE --text-column C --label-column C] [--FIELD V ...] [--pretrain-FIELD V ...]
    # Chinese reviews, sentiment:
    python tools/bench_pretrain.py --data ../shared/data/text_zh/online_shopping_9_cats.csv \
        --text-column review --label-column label --sample 12000

The split is transformer_classifier's (80/20 per class, fixed seed; `--sample N` first draws N
texts at random, seed 0, as tools/bench_text.py does). Of the training texts, a fixed
stratified sample of `--labels` texts (the recipe's `--labels`, its selection slice included)
is all a classifier learns labels from; the other training texts, without their labels, are
what `python -m train transformer_pretrain` reads (written to a text file, one per line, as a
user would pass them). The validation texts are never read by either. For each seed, one
pre-training run (or one for all: `--pretrain-once`), then two classifier runs that differ only in `--pretrained`: same epochs,
steps, flags and seed, the saved epoch chosen on the selection slice. Prints the accuracy of
each saved model on the validation texts, the mean ± standard deviation over seeds, the gain,
and the wall times with the CPU. `--FIELD V` sets a transformer_classifier field of both arms,
`--pretrain-FIELD V` a transformer_pretrain field; `--pretrain-once` pre-trains once (with the
first seed) and fine-tunes every seed from that run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench_text import cpu_name, network, sampled  # noqa: E402

from train.recipes import transformer_classifier, transformer_pretrain  # noqa: E402
from train.recipes._text import encode, labelled_sample  # noqa: E402

PREFIX = "pretrain_"


def parse(argv) -> tuple[argparse.Namespace, transformer_classifier.Config, transformer_pretrain.Config]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=0, help="draw this many texts of --data first (seed 0)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--pretrain-once", action="store_true",
                        help="one pre-training run (the first seed) for every seed's fine-tuning (default: one per seed)")
    for prefix, config_class in (("", transformer_classifier.Config), (PREFIX, transformer_pretrain.Config)):
        for field in dataclasses.fields(config_class):
            if field.type in ("int", "float", "str"):
                parser.add_argument("--" + (prefix + field.name).replace("_", "-"), dest=prefix + field.name,
                                    type=eval(field.type))  # noqa: S307
    args = parser.parse_args(argv)
    given = {k: v for k, v in vars(args).items() if v is not None and k not in ("sample", "seeds", "json", "pretrain_once")}
    fine = dataclasses.replace(transformer_classifier.Config(labels=1000),
                               **{k: v for k, v in given.items() if not k.startswith(PREFIX)})
    pre = dataclasses.replace(transformer_pretrain.Config(),
                              **{k[len(PREFIX):]: v for k, v in given.items() if k.startswith(PREFIX)})
    return args, fine, pre


def unlabelled_file(config: transformer_classifier.Config) -> tuple[Path, int, int, list, list]:
    """Write the training texts outside the `--labels` sample to a text file, one per line:
    `(path, labelled count, unlabelled count, validation texts, validation labels)`."""
    (train_texts, train_ids), (val_texts, val_ids), names = encode(config, "bench_pretrain")
    (labelled, _), (rest, _) = labelled_sample(train_texts, train_ids, config.labels)
    path = Path(tempfile.mkdtemp(prefix="bench_pretrain_")) / "unlabelled.txt"
    path.write_text("".join(" ".join(text.split()) + "\n" for text in rest), encoding="utf-8")
    return path, len(labelled), len(rest), val_texts, [names[i] for i in val_ids]


def main(argv=None) -> None:
    import statistics

    from train.trainer import train

    args, fine, pre = parse(argv)
    fine = sampled(fine, args.sample)
    path, labelled, unlabelled, val_texts, val_labels = unlabelled_file(fine)
    pre = dataclasses.replace(pre, data=str(path), text_column="", skip_validation=False, limit=0)
    print(f"{labelled} labelled training texts, {unlabelled} unlabelled ({path}), {len(val_texts)} validation")
    rows, run = [], None
    for seed in [int(s) for s in args.seeds.split(",")]:
        if run is None or not args.pretrain_once:
            run = Path(tempfile.mkdtemp(prefix="bench_pretrain_run_")) / "pretrain"
            start = time.perf_counter()
            train(transformer_pretrain.RECIPE, dataclasses.replace(pre, seed=seed), run, verbose=False)
            pretrain_seconds = time.perf_counter() - start
        val = (val_texts, val_labels)
        plain = network(transformer_classifier.RECIPE, dataclasses.replace(fine, seed=seed), None, val)
        started = network(transformer_classifier.RECIPE, dataclasses.replace(fine, seed=seed, pretrained=str(run)),
                          None, val)
        rows.append({"seed": seed, "pretrain_run": str(run), "pretrain_seconds": pretrain_seconds, "plain": plain["accuracy"],
                     "pretrained": started["accuracy"], "plain_seconds": plain["seconds"],
                     "pretrained_seconds": started["seconds"]})
        print(json.dumps(rows[-1]), flush=True)
    mean = lambda key: statistics.mean(100 * r[key] for r in rows)  # noqa: E731
    spread = lambda key: statistics.stdev(100 * r[key] for r in rows) if len(rows) > 1 else 0.0  # noqa: E731
    print(f"\n{fine.data}: {labelled} labels, {unlabelled} unlabelled texts pre-trained on, "
          f"{len(val_texts)} validation texts; {cpu_name()}")
    print("| seed | no pre-training | pre-trained | gain (points) | pre-training s | fine-tuning s (without / with) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {100 * r['plain']:.2f}% | {100 * r['pretrained']:.2f}% | "
              f"{100 * (r['pretrained'] - r['plain']):+.2f} | {r['pretrain_seconds']:.0f} | "
              f"{r['plain_seconds']:.0f} / {r['pretrained_seconds']:.0f} |")
    print(f"| mean ± sd | {mean('plain'):.2f} ± {spread('plain'):.2f}% | {mean('pretrained'):.2f} ± "
          f"{spread('pretrained'):.2f}% | {mean('pretrained') - mean('plain'):+.2f} | | |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "fine": dataclasses.asdict(fine),
                                         "pretrain": dataclasses.asdict(pre)}, indent=1))


if __name__ == "__main__":
    main()
