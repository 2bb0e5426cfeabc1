"""How often `zoo.data.text.decode_text` finds the encoding of small files: random groups of
texts from a UTF-8 table, saved in one encoding, counted by the encoding found.

    python tools/bench_encodings.py ../shared/data/text_zh/online_shopping_9_cats.csv \
        --column review --encoding gbk --sizes 1,2,5 --draws 1000

Each draw takes `size` texts at random (`--seed`, the same draws every time), joins them a line
each and encodes them; a draw holding a character the encoding lacks is skipped and counted.
Large files are not the question: on them every test has thousands of characters to go on.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zoo.data.text import decode_text, load_unlabelled_texts  # noqa: E402


def detection_counts(texts: list[str], encoding: str, size: int, draws: int, seed: int = 0
                     ) -> tuple[collections.Counter, int]:
    """`(encodings found and how often, draws skipped)` over `draws` groups of `size` texts."""
    rng, found, skipped = random.Random(seed), collections.Counter(), 0
    for _ in range(draws):
        try:
            data = "\n".join(rng.sample(texts, size)).encode(encoding)
        except UnicodeEncodeError:
            skipped += 1
            continue
        found[decode_text(data)[1]] += 1
    return found, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a UTF-8 CSV/TSV (or text file, one text a line)")
    parser.add_argument("--column", default="", help="the text column of a table (default: found by name)")
    parser.add_argument("--encoding", default="gbk", help="the encoding the groups are saved in (default gbk)")
    parser.add_argument("--sizes", default="1,2,5", help="texts per group, comma-separated (default 1,2,5)")
    parser.add_argument("--draws", type=int, default=1000, help="groups per size (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    texts = load_unlabelled_texts(args.data, args.column, encoding="utf-8")
    print(f"{len(texts)} texts of {args.data}, saved as {args.encoding}, {args.draws} random groups per size")
    print("\n| texts per group | found as | skipped (a character the encoding lacks) |\n|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        found, skipped = detection_counts(texts, args.encoding, size, args.draws, args.seed)
        counts = ", ".join(f"{name} {count}" for name, count in found.most_common())
        print(f"| {size} | {counts} | {skipped} |")


if __name__ == "__main__":
    main()
