"""How to split a corpus into tokens, and whether the tokens it gives can be learned from.

- `choose_split(texts)`: `"chars"` or `"words"` for `zoo.layers.TextTokenizer`, with the reason
  in words, decided from the texts alone (`--tokens auto`).
- `vocabulary_stats(token_lists)`: tokens per text and how many are seen only once; its
  `problem` names a degenerate reading (a whole sentence as one token, as whitespace splitting
  does to Chinese) and the fix, so a run can say so instead of training a majority-class model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SAMPLE = 5000  # texts looked at to choose the split
SEGMENTED_RUN = 3.0  # mean characters per run of an unspaced script at most this: words are already spaced
LENGTHS = (64, 256)  # the automatic sequence length stays in this range
FEW_TOKENS = 2  # median tokens per text at most this: degenerate
MOSTLY_SINGLETONS = 0.5  # share of a corpus' tokens whose token occurs once above this: degenerate


def _script_counts(texts: Sequence[str]) -> tuple[int, int, list[int]]:
    """`(letters, letters of scripts without spaces, lengths of their runs)` of standardized texts."""
    import tensorflow as tf

    from zoo.layers.tokenizer import UNSPACED, TextTokenizer

    standard = TextTokenizer("words").standardize(tf.constant(list(texts), tf.string))
    length = lambda t: int(tf.reduce_sum(tf.strings.length(t, unit="UTF8_CHAR")))  # noqa: E731
    letters = length(tf.strings.regex_replace(standard, r"[^\p{L}\p{M}]", ""))
    unspaced = tf.strings.regex_replace(standard, rf"[^{UNSPACED}\p{{M}}]+", " ")
    runs = tf.strings.split(unspaced).flat_values
    return letters, length(runs), tf.strings.length(runs, unit="UTF8_CHAR").numpy().tolist()


def choose_split(texts: Sequence[str]) -> tuple[str, str]:
    """`("chars" or "words", the reason)` for `TextTokenizer(split=...)` from (up to `SAMPLE`
    of) the training texts: characters when a share of the letters belong to scripts written
    without spaces (Chinese, Japanese, Thai...) in runs longer than words, else words.

    Args:
        texts: raw training texts.

    Returns:
        The split and one sentence saying why, for the run's log.
    """
    step = max(1, len(texts) // SAMPLE)
    letters, unspaced, runs = _script_counts(list(texts)[::step][:SAMPLE])
    if unspaced == 0:
        return "words", "no letters of a script written without spaces (Chinese, Japanese, Thai...)"
    share, run = unspaced / max(letters, 1), float(np.mean(runs))
    described = f"{share:.0%} of the letters are Han, kana, Thai, Lao, Khmer or Myanmar"
    if run <= SEGMENTED_RUN:
        return "words", (f"{described}, in runs of {run:.1f} characters on average: the text is already "
                         "segmented into words by spaces, so each word is a token")
    return "chars", (f"{described}, in runs of {run:.1f} characters without spaces: each of their "
                     "characters is a token, other words stay whole")


def choose_length(texts: Sequence[str], split: str, share: float = 0.95) -> tuple[int, str]:
    """`(sequence length, the reason)`: enough tokens to read `share` of the texts whole, rounded
    up to a multiple of 8 and kept within `LENGTHS` (a longer text is cut, as every one would be).

    Args:
        texts: raw training texts.
        split: "words" or "chars", as the model will split them.
        share: the share of texts to read whole.
    """
    import tensorflow as tf

    from zoo.layers.tokenizer import TextTokenizer

    tokenizer, texts = TextTokenizer(split), list(texts)
    counts = [int(n) for i in range(0, len(texts), 4096)  # in batches: any corpus size
              for n in tokenizer(tf.constant(texts[i:i + 4096], tf.string)).row_lengths().numpy()]
    needed = int(np.ceil(np.percentile(counts, 100 * share))) if counts else 0
    length = int(min(max(-(-needed // 8) * 8, LENGTHS[0]), LENGTHS[1]))
    return length, f"{share:.0%} of the training texts have at most {needed} tokens; kept within {LENGTHS[0]}..{LENGTHS[1]}"


@dataclass(frozen=True)
class VocabularyStats:
    """How a corpus reads as tokens."""

    texts: int
    median_tokens: float  # tokens per text, the median
    distinct: int  # distinct tokens
    singleton_share: float  # share of all token occurrences whose token occurs only once
    problem: str | None  # why the tokens cannot be learned from, and the fix; None when fine


def vocabulary_stats(token_lists: Sequence[Sequence[str]], split: str = "chars") -> VocabularyStats:
    """Tokens per text and once-seen tokens of a tokenized corpus, and whether it is degenerate:
    most texts read as one or two tokens, or most token occurrences are of tokens seen once.

    Args:
        token_lists: the tokens of each training text.
        split: the split that made them ("words" or "chars"), for the advice.

    Returns:
        `VocabularyStats`; `problem` says what is wrong and what to do, or is None.
    """
    counts = Counter(token for tokens in token_lists for token in tokens)
    total = sum(counts.values())
    singletons = sum(1 for c in counts.values() if c == 1) / max(total, 1)
    median = float(np.median([len(t) for t in token_lists])) if token_lists else 0.0
    problem = None
    if median <= FEW_TOKENS or singletons > MOSTLY_SINGLETONS:
        found = (f"most texts read as {median:g} token(s) (median) and {singletons:.0%} of the token "
                 f"occurrences are of tokens seen once in {len(token_lists)} texts")
        fix = ("text in a script without spaces (Chinese, Japanese, Thai) split at spaces reads a whole "
               "clause as one token: use --tokens chars (or auto)" if split == "words" else
               "check that the text column holds the texts (--text-column) and that they are not ids or labels")
        problem = f"the texts cannot be learned from as tokens: {found}. A model will predict the majority class. Cause and fix: {fix}"
    return VocabularyStats(len(token_lists), median, len(counts), singletons, problem)
