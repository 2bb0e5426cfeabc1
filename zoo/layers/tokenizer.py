"""TextTokenizer: raw strings in any script -> tokens, in the graph (saved with the model).

Standardization, in this order:
1. Markup escapes left in scraped text (`&amp;`, AG News' `#39;`) and backslashes become spaces.
2. Unicode NFKC normalization: full-width forms, compatibility ideographs, ligatures and
   the like map to their standard characters (`，` -> `,`, `ＡＢＣ` -> `ABC`, `ﬁ` -> `fi`), and a
   base letter followed by combining marks is composed (`e` + U+0301 -> `é`). TensorFlow has
   no NFKC op (tensorflow-text has one, but no Windows wheels and a pin on TensorFlow's minor
   version), so it is done with two lookup tables built from Python's `unicodedata`: each
   character's own NFKC form, then canonical composition of adjacent pairs (two passes, so a
   base takes up to two marks, e.g. `ệ`; Hangul jamo included). It equals
   `unicodedata.normalize("NFKC", text)` on text in canonical mark order with at most two
   marks per base (tests/test_layer_tokenizer.py checks real corpora and edge cases).
3. Lower case (Unicode-aware).
4. Punctuation of every script removed (`\\p{P}`, plus the ASCII symbols `$+<=>^`|~` that
   Keras' TextVectorization strips), so `don't` -> `dont` and `。！？` are gone.

Splitting (`split`):
- `"words"`: on whitespace, as TextVectorization does.
- `"chars"`: every character of a script written without spaces between words (Han,
  Hiragana, Katakana, Thai, Lao, Khmer, Myanmar) and every symbol such as an emoji is a token
  (with its combining marks), while runs of other letters stay whole words:
  `"iPhone太好用了!"` -> `iphone 太 好 用 了`.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Literal

import keras
import tensorflow as tf

SPLITS = ("words", "chars")
# Scripts written without spaces between words, and symbols (emoji): one token per character.
UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
_CHARACTER_TOKEN = rf"([{UNSPACED}\p{{So}}]\p{{M}}*)"
_MARKUP = r"&[a-zA-Z]+;|&#\d+;|#\d+;|\\"
_PUNCTUATION = r"[\p{P}$+<=>^`|~]"
_LAST_CODE_POINT = 0x2FFFF  # NFKC changes no character above the CJK compatibility supplement


@functools.lru_cache(maxsize=1)
def nfkc_tables() -> tuple[dict[str, str], dict[str, str]]:
    """`(character -> its NFKC form, for every character NFKC changes; pair -> composed
    character, for canonical compositions of two characters, Hangul syllables included)`."""
    single, pairs = {}, {}
    for code in range(_LAST_CODE_POINT + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue  # surrogates
        char = chr(code)
        normal = unicodedata.normalize("NFKC", char)
        if normal != char:
            single[char] = normal
        parts = unicodedata.decomposition(char).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            pair = "".join(chr(int(p, 16)) for p in parts)
            if unicodedata.normalize("NFC", pair) == char:
                pairs[pair] = char
    for lead in range(19):  # Hangul: L + V -> LV, LV + T -> LVT (Unicode 3.12)
        for vowel in range(21):
            syllable = 0xAC00 + (lead * 21 + vowel) * 28
            pairs[chr(0x1100 + lead) + chr(0x1161 + vowel)] = chr(syllable)
            for trail in range(1, 28):
                pairs[chr(syllable) + chr(0x11A7 + trail)] = chr(syllable + trail)
    return single, pairs


def _table(mapping: dict[str, str]) -> tf.lookup.StaticHashTable:
    keys, values = list(mapping), list(mapping.values())
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default_value="")


def _compose_pairs(chars: tf.RaggedTensor, table: tf.lookup.StaticHashTable) -> tf.RaggedTensor:
    """One pass of canonical composition: where a character and the next one in its text form
    a pair of `table`, the first becomes the composed character and the second is dropped."""
    values, starts, limits = chars.values, chars.row_starts(), chars.row_limits()
    count = tf.size(values)
    ends = tf.scatter_nd(tf.expand_dims(tf.boolean_mask(limits - 1, limits > starts), 1),
                         tf.ones_like(tf.boolean_mask(limits, limits > starts), tf.bool), [count])
    following = tf.where(ends, "", tf.concat([values[1:], [""]], 0))  # the next character of the same text
    composed = table.lookup(tf.strings.join([values, following]))
    hit = (composed != "") & (following != "")
    dropped = tf.concat([[False], hit], 0)[:count] & tf.logical_not(tf.concat([[True], ends], 0)[:count])
    hit &= tf.logical_not(dropped)  # a character composed into the previous one composes nothing
    kept = tf.logical_not(dropped)
    values = tf.where(hit, composed, values)
    return tf.RaggedTensor.from_value_rowids(tf.boolean_mask(values, kept),
                                             tf.boolean_mask(chars.value_rowids(), kept), chars.nrows())


@keras.saving.register_keras_serializable(package="zoo")
class TextTokenizer(keras.layers.Layer):
    """Raw strings -> standardized tokens, for any script (see the module docstring).

    Args:
        split: `"chars"` (characters of scripts without spaces, e.g. Chinese; words of the
            others) or `"words"` (whitespace only, e.g. for text already segmented into words).
        lowercase: lower-case the text (Unicode-aware).
        normalize: apply NFKC normalization.
        strip_punctuation: remove punctuation of every script.

    Call arguments:
        inputs: `(B,)` strings; returns a `tf.RaggedTensor` `(B, None)` of string tokens.

    Example:
    >>> TextTokenizer("chars")(tf.constant(["iPhone太好用了！"])).to_list()
    [[b'iphone', b'\\xe5\\xa4\\xaa', b'\\xe5\\xa5\\xbd', b'\\xe7\\x94\\xa8', b'\\xe4\\xba\\x86']]
    """

    def __init__(self, split: Literal["words", "chars"] = "chars", lowercase: bool = True, normalize: bool = True,
                 strip_punctuation: bool = True, **kwargs):
        super().__init__(**kwargs)
        if split not in SPLITS:
            raise ValueError(f"TextTokenizer split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.split, self.lowercase = split, bool(lowercase)
        self.normalize, self.strip_punctuation = bool(normalize), bool(strip_punctuation)
        if self.normalize:
            single, pairs = nfkc_tables()
            self._single, self._pairs = _table(single), _table(pairs)
        self.built = True

    def standardize(self, texts) -> tf.Tensor:
        """`(B,)` strings -> `(B,)` standardized strings (markup, NFKC, lower case, punctuation)."""
        texts = tf.strings.regex_replace(tf.convert_to_tensor(texts, tf.string), _MARKUP, " ")
        if self.normalize:
            chars = tf.strings.unicode_split(texts, "UTF-8", errors="replace")  # (B, None) characters
            mapped = self._single.lookup(chars.values)
            chars = chars.with_values(tf.where(mapped == "", chars.values, mapped))
            for _ in range(2):  # a base with up to two combining marks
                chars = _compose_pairs(chars, self._pairs)
            texts = tf.strings.reduce_join(chars, axis=1)
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        if self.strip_punctuation:
            texts = tf.strings.regex_replace(texts, _PUNCTUATION, "")
        return texts

    def call(self, inputs):
        texts = self.standardize(inputs)
        if self.split == "chars":
            texts = tf.strings.regex_replace(texts, _CHARACTER_TOKEN, r" \1 ")
        return tf.strings.split(texts)

    def compute_output_shape(self, input_shape):
        return (*input_shape, None)

    def get_config(self):
        return {**super().get_config(), "split": self.split, "lowercase": self.lowercase,
                "normalize": self.normalize, "strip_punctuation": self.strip_punctuation}
