"""Delimited text files: labelled text tables (CSV/TSV) and numeric tables; labelled texts from
a file, `assets:NAME` or `tfds:NAME`, split and encoded for a classifier.

Files are decoded in the encoding given (`encoding=`, `--encoding`), else by `decode_text`:
UTF-8, UTF-16 or UTF-32 with a byte-order mark (Excel's "Unicode text"), UTF-8, else the code
page Excel saves CSV files in on a Japanese, Korean, Chinese or Western European Windows
(CP932, EUC-JP, CP949, GB18030, CP950, CP1252) when the bytes read as that language's text;
otherwise as UTF-8 with U+FFFD (the replacement character) for bytes that are not valid UTF-8
instead of failing, so a stray byte costs one character, not the file (and `encode_texts`
warns when many texts hold such characters). The delimiter is a tab
for `.tsv` files, else sniffed among comma, tab, semicolon and `|` (comma when unsure).
"""

from __future__ import annotations

import codecs
import csv
import math
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from zoo.data.assets import resolve_source
from zoo.errors import UserError

# Header names recognised when no column is given (compared case-insensitively).
TEXT_NAMES = ("text", "sentence", "review", "content", "document", "body", "tweet", "comment", "message")
LABEL_NAMES = ("label", "labels", "class", "category", "target", "sentiment", "topic", "y")
_DELIMITERS = ",\t;|"

Rows = list[tuple[int, list[str]]]  # (line number, fields)

# Byte-order marks and their codecs (UTF-32 LE's starts with UTF-16 LE's: it is tried first).
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Double-byte characters of GB18030 and Big5 (ASCII bytes stand alone; GB18030's four-byte
# characters read as two pairs), with the ranges that hold the everyday text of each captured:
# GB2312's (both bytes A1-FE), Big5's symbols and level-1 (frequent) characters (A140-C67E).
_OTHER_PAIR = rb"|[\x81-\xfe][\x30-\x39\x40-\x7e\x80-\xfe]"
_GB2312_PAIRS = re.compile(rb"([\xa1-\xf7][\xa1-\xfe])" + _OTHER_PAIR)
_BIG5_PAIRS = re.compile(rb"([\xa1-\xc5][\x40-\x7e\xa1-\xfe]|\xc6[\x40-\x7e])" + _OTHER_PAIR)
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_ASCII = bytes(range(128))
_KANA = re.compile("[\u3041-\u30ff]")  # full-width hiragana and katakana
_JAPANESE = re.compile("[\u3000-\u30ff\u4e00-\u9fff\uff01-\uff9f]")  # and CJK punctuation, kanji, forms
_HANGUL = re.compile("[\uac00-\ud7a3]")  # precomposed Hangul syllables
_SPACED_HANGUL = re.compile("[\uac00-\ud7a3] [\uac00-\ud7a3]")  # the end and start of two words
# Windows-1252's letters and punctuation in Western European text. Left out, so that text in
# another single-byte code page is not taken for it: superscripts, fractions and most symbols
# (Polish in Windows-1250 reads as `by³a rozs¹dna`), and Icelandic's eth, thorn and y-acute
# (Turkish in Windows-1254 reads as `kullanýþlý`).
_LATIN1_TEXT = re.compile("[\u00c0-\u00cf\u00d1-\u00dc\u00df-\u00ef\u00f1-\u00fc\u00ff\u0152\u0153\u0160\u0161"
                          "\u0178\u017d\u017e\u00a0\u00a1\u00a3\u00a7\u00a9\u00aa\u00ab\u00ae\u00b0\u00b7\u00ba"
                          "\u00bb\u00bf\u2013\u2014\u2018-\u201e\u2022\u2026\u20ac\u2122]")
_NON_ASCII = re.compile("[^\x00-\x7f]+")
_ACCENTED = re.compile("[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e]")
_ASCII_LETTER = re.compile("[A-Za-z]")
LEGACY_SHARE = 0.9  # of a file's first non-ASCII characters that must look like a code page's text
SAMPLE = 1 << 20  # bytes (characters) of a file that the code page tests look at
REPLACED = "utf-8 (invalid bytes replaced)"  # decode_text's encoding for bytes it could not read


def _non_ascii(text: str) -> str:
    """The non-ASCII characters of `text[:SAMPLE]`, in order."""
    return "".join(_NON_ASCII.findall(text[:SAMPLE]))


def _share(pattern: re.Pattern, chars: str) -> float:
    """The share of `chars` that `pattern` (one character) matches."""
    return len(pattern.findall(chars)) / max(len(chars), 1)


def _pair_share(pairs: re.Pattern, data: bytes) -> float:
    """The share of the double-byte characters of `data[:SAMPLE]` that `pairs` captures."""
    found = pairs.findall(data[:SAMPLE])
    return sum(map(bool, found)) / max(len(found), 1)


def _is_japanese(data: bytes, text: str) -> bool:
    """Japanese as Windows writes it (CP932, Shift_JIS): kana, kanji and CJK punctuation, with
    kana among them (GBK, Big5 or Korean bytes read as CP932 give half-width katakana)."""
    chars = _non_ascii(text)
    return _share(_JAPANESE, chars) >= LEGACY_SHARE and _share(_KANA, chars) >= 0.1


def _is_korean(data: bytes, text: str) -> bool:
    """Korean as Windows writes it (CP949, a superset of EUC-KR): Hangul syllables in words
    with spaces between them (GBK Chinese read as CP949 fails to decode, or gives Hangul mixed
    with hanja and symbols; a few short Chinese reviews can give only Hangul, but unspaced)."""
    chars = _non_ascii(text)
    hangul = len(_HANGUL.findall(chars))
    return hangul >= LEGACY_SHARE * max(len(chars), 1) and 20 * len(_SPACED_HANGUL.findall(text[:SAMPLE])) >= hangul


def _is_simplified_chinese(data: bytes, text: str) -> bool:
    return _pair_share(_GB2312_PAIRS, data) >= LEGACY_SHARE


def _is_traditional_chinese(data: bytes, text: str) -> bool:
    return _pair_share(_BIG5_PAIRS, data) >= LEGACY_SHARE


def _is_western(data: bytes, text: str) -> bool:
    """Windows-1252 (a superset of Latin-1: English, French, German, Spanish...): accented
    letters and typographic punctuation (`_LATIN1_TEXT`) among mostly ASCII letters (Cyrillic,
    Greek or CJK bytes read as Windows-1252 give words of accented letters only)."""
    sample = text[:SAMPLE]
    accented = len(_ACCENTED.findall(sample))
    return _share(_LATIN1_TEXT, _non_ascii(sample)) >= LEGACY_SHARE and \
        accented <= 0.3 * (accented + len(_ASCII_LETTER.findall(sample)))


def _mostly_utf8(data: bytes) -> bool:
    """Whether most non-ASCII bytes of `data[:SAMPLE]` form UTF-8 characters: a UTF-8 file with
    a few bad bytes (cut short, or a line pasted from elsewhere), not a file in a code page."""
    sample = data[:SAMPLE]
    return sum(map(len, _UTF8_SEQUENCE.findall(sample))) >= 0.8 * len(sample.translate(None, _ASCII))


# Code pages tried in order on bytes that are not UTF-8, each with a test that its text is what
# the code page is used for (EUC-JP: Japanese on Unix). Japanese and Korean come first: their
# bytes often decode as GB18030 too (EUC-JP's and Korean's always do); GBK text decodes as Big5
# too, but its second bytes are A1-FE; Western text decodes in none of the double-byte ones (an
# accented letter before a space is not a character there).
_CODE_PAGES = (("cp932", _is_japanese), ("euc_jp", _is_japanese), ("cp949", _is_korean),
               ("gb18030", _is_simplified_chinese), ("cp950", _is_traditional_chinese), ("cp1252", _is_western))


def decode_text(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """`(text, encoding)` of a text file's bytes, whatever a user's editor saved.

    In order: a byte-order mark's UTF-8, UTF-16 or UTF-32; UTF-8; then the Windows code page
    that Excel saves CSV files in on a Japanese (CP932, Shift_JIS), Korean (CP949, EUC-KR),
    Simplified Chinese (GB18030, a superset of GBK and GB2312), Traditional Chinese (CP950,
    Big5) or Western European (CP1252, Latin-1) Windows, when the whole file decodes in it and
    at least `LEGACY_SHARE` of its first non-ASCII characters are that language's everyday
    text; else UTF-8 with U+FFFD for the invalid bytes, encoding `REPLACED`.

    Args:
        data: the file's bytes.
        encoding: a Python codec name (`gbk`, `shift_jis`, `koi8-r`...) to decode with instead
            of guessing; the bytes must be valid in it.

    Raises:
        LookupError: `encoding` is not a codec Python knows.
        UnicodeDecodeError: the bytes are not valid in `encoding`.

    Example:
    >>> decode_text("评论".encode("gbk"))
    ('评论', 'gb18030')
    """
    if encoding:  # UTF-8 named: a byte-order mark is not part of the text
        codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
        return data.decode(codec), encoding
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace"), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    for encoding, is_its_text in () if _mostly_utf8(data) else _CODE_PAGES:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if is_its_text(data, text):
            return text, encoding
    return data.decode("utf-8", errors="replace"), REPLACED


def decode_file(path: str | Path, encoding: str | None = None) -> tuple[str, str]:
    """`(text, encoding)` of a file, in `encoding` (a codec name such as `gbk` or `koi8-r`) or,
    when that is None, "" or "auto", as `decode_text` finds it.

    Raises:
        UserError: an unknown encoding, or bytes that are invalid in it.
        OSError: the file cannot be read.
    """
    data = Path(path).read_bytes()
    try:
        return decode_text(data, None if encoding in (None, "", "auto") else encoding)
    except LookupError:
        raise UserError(f"unknown encoding {encoding!r}: pass a Python codec name such as utf-8, gbk, "
                        "big5, shift_jis, euc-kr, cp1251, koi8-r or latin-1 (or auto to detect it)") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{path} is not {encoding}: bytes {data[error.start:error.start + 4]!r} at offset "
                        f"{error.start} are invalid in it. Pass the file's encoding, or auto") from None


def read_text_file(path: Path, encoding: str | None = None) -> str:
    """The text of a file (`decode_file`); a note on stdout when it was found not to be UTF-8."""
    text, used = decode_file(path, encoding)
    if used not in ("utf-8", "utf-8-sig", REPLACED, encoding):
        print(f"note: {path} is not UTF-8: read as {used.upper()}")
    return text


def read_rows(path: str | Path, delimiter: str | None = None, encoding: str | None = None) -> Rows:
    """The non-blank rows of a delimited text file with their 1-based line numbers.

    Args:
        path: the file (or `assets:NAME`).
        delimiter: the field separator; None: tab for `.tsv`, else sniffed.
        encoding: the file's codec; None: detected (`read_text_file`).

    Returns:
        `(line number, fields)` for every row that is not blank.

    Raises:
        UserError: the file is missing, empty, or not parseable as delimited text.
    """
    path = Path(resolve_source(str(path)))
    if not path.is_file():
        raise UserError(f"table file {path} does not exist: pass a CSV or TSV file")
    text = read_text_file(path, encoding)
    if not text.strip():
        raise UserError(f"table file {path} is empty: pass a CSV or TSV file with rows")
    delimiter = delimiter or _guess_delimiter(path, text)
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter)
    rows = []
    try:
        for fields in reader:
            if any(field.strip() for field in fields):
                rows.append((reader.line_num, fields))
    except csv.Error as error:
        raise UserError(f"cannot parse {path} line {reader.line_num}: {error}") from None
    return rows


def _guess_delimiter(path: Path, text: str) -> str:
    """Tab for `.tsv`; else what csv.Sniffer finds in the first lines; comma when unsure."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return ","


def read_text_table(path: str | Path, text_column: int | str | None = None,
                    label_column: int | str | None = None, delimiter: str | None = None,
                    encoding: str | None = None) -> tuple[list[str], list[str]]:
    """Texts and their labels from a CSV/TSV file, with or without a header row.

    The first row is a header when it holds a requested column name or a usual name
    (text, sentence, review, ...; label, class, category, ...), or names in any language: in
    a column whose values repeat like labels (at most half of its first 1,000 values distinct)
    its value is not one of them, and no column of numbers has a number there (`评论,标签`
    over `很好,好` rows). Defaults: the columns named like text and label; else column 0 when
    its values repeat like labels (AG News style: label, title, description; no header), else
    the only column whose values do (a note names it). When no text column is given or named,
    the text is every other column joined with a space.

    Args:
        path: the file (or `assets:NAME`); see the module docstring for decoding.
        text_column: a header name, or a 0-based index (int or numeric string).
        label_column: likewise.
        delimiter: the field separator; None: tab for `.tsv`, else sniffed.
        encoding: the file's codec (`gbk`, `koi8-r`...); None: detected (`decode_text`).

    Returns:
        `(texts, labels)`, one string each per row (labels stripped of spaces).

    Raises:
        UserError: the file is missing or empty, has no data rows, a column does not exist
            (the message lists those that do), or a row has too few fields (named by line).
    """
    rows = read_rows(path, delimiter, encoding)
    header = _header(rows, (text_column, label_column))
    data = rows[1:] if header else rows
    if not data:
        raise UserError(f"table file {path} has a header but no data rows")
    width = len(rows[0][1])
    text = None if text_column is None else _index(path, header, width, text_column, "text")
    label = _label_index(path, header, width, label_column, [fields for _, fields in data[:HEADER_ROWS]], text)
    if text is None and header:
        text = next((_find(header, n) for n in TEXT_NAMES if _find(header, n) is not None), None)
    if text == label:
        raise UserError(f"{path}: the text and label columns are the same ({label}): pass "
                        "different columns")
    need = max(label, -1 if text is None else text) + 1
    for line, fields in data:
        if len(fields) < need:
            raise UserError(f"{path} line {line} has {len(fields)} field(s) but column {need - 1} "
                            "is needed: fix that row (a missing delimiter or quote?)")
    texts = [_text(fields, text, label) for _, fields in data]
    return texts, [fields[label].strip() for _, fields in data]


HEADER_ROWS = 1000  # data rows read to tell a header of names in any language from data


def _header(rows: Rows, wanted: Iterable[int | str | None]) -> list[str] | None:
    """The first row's names (stripped) if it looks like a header, else None: it holds a
    requested column name or a usual one (text, review, label...), or its values are unlike the
    data's in any language (`_names_by_values`)."""
    first = rows[0][1]
    names = {field.strip().lower() for field in first}
    asked = {w.strip().lower() for w in wanted if isinstance(w, str) and not _is_int(w)}
    usual = set(TEXT_NAMES) | set(LABEL_NAMES)
    named = names & (asked | usual) or _names_by_values(first, [fields for _, fields in rows[1:HEADER_ROWS + 1]])
    return [field.strip() for field in first] if named else None


def _column_values(data: list[list[str]], index: int) -> list[str]:
    return [fields[index].strip() for fields in data if index < len(fields)]


def _categorical(values: list[str]) -> bool:
    """Whether a column's values repeat like labels: at most half of them distinct (2 or more rows each on average)."""
    return len(values) >= 4 and len(set(values)) <= len(values) // 2


def _names_by_values(first: list[str], data: list[list[str]]) -> bool:
    """A first row of names in any language (`评论,标签`, `レビュー,評価` over rows such as
    `很好,好` or `良い,5`): in a column whose values repeat like labels, its value is not one of
    them, and no column of numbers has a number in it. (A headerless AG News row `3,Title,...`
    holds one of its label column's values: it is data.)"""
    columns = [_column_values(data, index) for index in range(len(first))]
    new_label = any(_categorical(values) and first[index].strip() not in set(values)
                    for index, values in enumerate(columns))
    numbers_kept = all(not _is_number(first[index]) for index, values in enumerate(columns)
                       if values and all(map(_is_number, values)))
    return new_label and numbers_kept


def _label_by_values(data: list[list[str]], width: int, text: int | None) -> int | None:
    """The only column (other than `text`) whose values repeat like labels, else None."""
    found = [index for index in range(width) if index != text and _categorical(_column_values(data, index))]
    return found[0] if len(found) == 1 else None


def _find(header: list[str] | None, name: str) -> int | None:
    """The index of a header name, compared case-insensitively; None when absent."""
    lower = [h.lower() for h in header or []]
    return lower.index(name.strip().lower()) if name.strip().lower() in lower else None


def _is_int(value: str) -> bool:
    return value.strip().lstrip("-").isdigit()


def _index(path, header: list[str] | None, width: int, column: int | str, role: str) -> int:
    """The 0-based index of a column given by index or header name."""
    if isinstance(column, int) or _is_int(column):
        index = int(column)
        if not 0 <= index < width:
            raise UserError(f"{role} column {index} does not exist in {path}: it has {width} "
                            f"column(s), {_describe(header, width)}")
        return index
    index = _find(header, column)
    if index is None:
        raise UserError(f"{role} column {column!r} does not exist in {path}: "
                        f"{_describe(header, width)}; pass one of them or a 0-based index")
    return index


def _label_index(path, header: list[str] | None, width: int, column: int | str | None,
                 data: list[list[str]], text: int | None) -> int:
    """The label column: the one given, else one named like a label, else column 0 without a
    header when its values repeat like labels (AG News), else the only column whose values do
    (a header of other names, in any language, or labels in another column), else column 0
    without a header."""
    if column is not None:
        return _index(path, header, width, column, "label")
    for name in LABEL_NAMES if header else ():
        if _find(header, name) is not None:
            return _find(header, name)
    if header is None and _categorical(_column_values(data, 0)):
        return 0
    found = _label_by_values(data, width, text)
    if found is not None:
        print(f"note: {path}: label column {found}{f' ({header[found]!r})' if header else ''}, the only one "
              "whose values repeat like labels; --label-column chooses another")
        return found
    if header is None:
        return 0
    raise UserError(f"no label column found in {path}: {_describe(header, width)}; "
                    "pass the label column by name or 0-based index")


def _describe(header: list[str] | None, width: int) -> str:
    if header is None:
        return f"it has no header row, so pass a 0-based index (0..{width - 1})"
    return "the columns are " + ", ".join(f"{i}: {name!r}" for i, name in enumerate(header))


def _text(fields: list[str], text: int | None, label: int) -> str:
    """One column's text, or all columns but the label joined with a space."""
    if text is not None:
        return fields[text].strip()
    return " ".join(f.strip() for i, f in enumerate(fields) if i != label and f.strip())


def _natural_key(name: str) -> tuple:
    """Numbers first, in numeric order; then strings alphabetically (case-insensitive)."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, name.casefold(), name)


def encode_labels(train_labels: Sequence, other_labels: Sequence | None = None
                  ) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Class names and integer ids for training labels (and, say, validation labels).

    Args:
        train_labels: one label per training example (strings or numbers; compared as strings).
        other_labels: labels of another split, encoded with the training classes.

    Returns:
        `(class_names, train_ids, other_ids)`: names sorted naturally (numbers numerically,
        then strings alphabetically), int32 ids into them, and int32 ids of `other_labels`
        (None when not given) where a label not seen in training is -1: callers drop or
        count those rows, the model never sees an id it has no output for.

    Raises:
        UserError: the training labels hold fewer than 2 classes.
    """
    train = [str(label).strip() for label in train_labels]
    names = sorted(set(train), key=_natural_key)
    if len(names) < 2:
        found = f"only {names[0]!r}" if names else "no labels"
        raise UserError(f"a classifier needs at least 2 classes in the training labels, found {found}: "
                        "check the label column")
    ids = {name: i for i, name in enumerate(names)}
    train_ids = np.array([ids[label] for label in train], np.int32)
    if other_labels is None:
        return names, train_ids, None
    other_ids = np.array([ids.get(str(label).strip(), -1) for label in other_labels], np.int32)
    return names, train_ids, other_ids


Texts = tuple[list[str], list[str]]  # (texts, labels), one label string per text


def split_texts(texts: Sequence[str], labels: Sequence, fraction: float, seed: int = 0
                ) -> tuple[tuple[list[str], list], tuple[list[str], list]]:
    """A stratified split, e.g. training / validation texts.

    Args:
        texts: the texts.
        labels: one label per text (any comparable values: strings, ids).
        fraction: the share of each class that goes to the second part (rounded, kept >= 1 from
            classes of 2 or more texts, and never a whole class).
        seed: seeds the permutation that chooses them.

    Returns:
        `((texts, labels), (held-out texts, labels))`, the order inside each part as given.
    """
    rng, labels_array, val = np.random.default_rng(seed), np.array(labels), []
    for name in sorted(set(labels)):
        members = np.flatnonzero(labels_array == name)
        count = min(max(round(fraction * len(members)), 1), len(members) - 1)
        val += rng.permutation(members)[:count].tolist()
    chosen = np.zeros(len(texts), bool)
    chosen[val] = True

    def part(keep: bool) -> tuple[list[str], list]:
        rows = [i for i in range(len(texts)) if chosen[i] == keep]
        return [texts[i] for i in rows], [labels[i] for i in rows]

    return part(False), part(True)


def named_by_classes_file(path: str, labels: list[str]) -> list[str]:
    """Labels 1..K named by a `classes.txt` beside the file (one name a line: the AG News /
    DBpedia CSV convention of Zhang et al. 2015).

    Args:
        path: the CSV/TSV file (or `assets:NAME`).
        labels: its label strings.

    Returns:
        The class names of the labels when a `classes.txt` is there and every label is one of
        1..K; else `labels` unchanged.
    """
    names_file = Path(resolve_source(path)).parent / "classes.txt"
    if not names_file.is_file():
        return labels
    names = [line.strip() for line in decode_text(names_file.read_bytes())[0].splitlines() if line.strip()]
    if not all(l.isdigit() and 1 <= int(l) <= len(names) for l in labels):
        return labels
    return [names[int(l) - 1] for l in labels]


def _column(value: int | str | None) -> int | str | None:
    """None for automatic ("" or None), an int for an index (digit string), else a name."""
    if value is None or isinstance(value, int):
        return value
    if value == "":
        return None
    return int(value) if value.strip().lstrip("-").isdigit() else value


def _read_table(path: str, text_column, label_column, limit: int, encoding: str | None) -> Texts:
    texts, labels = read_text_table(path, _column(text_column), _column(label_column), encoding=encoding)
    texts, labels = (texts[:limit], labels[:limit]) if limit else (texts, labels)
    return texts, named_by_classes_file(path, labels)


def _read_tfds(source: str, split: str, text_column, label_column, limit: int) -> Texts:
    """Texts (a `text` feature, else title + description) and label names of a TFDS split."""
    from zoo.data.sources import tfds_dataset

    dataset, info = tfds_dataset(source, split)
    features = list(info.features)
    text_keys = [str(text_column)] if text_column not in (None, "") else (
        ["text"] if "text" in features else [k for k in ("title", "description") if k in features])
    label_key = "label" if label_column in (None, "") else str(label_column)
    missing = [k for k in [*text_keys, label_key] if k not in features] or ([] if text_keys else ["text"])
    if missing:
        raise UserError(f"TFDS dataset {source} has no feature {', '.join(map(repr, missing))}: it has "
                        f"{', '.join(features)}; pass --text-column and --label-column")
    names = getattr(info.features[label_key], "names", None)
    texts, labels = [], []
    for example in (dataset.take(limit) if limit else dataset).as_numpy_iterator():
        texts.append(" ".join(example[k].decode("utf-8", "replace") for k in text_keys))
        label = example[label_key]
        labels.append(names[int(label)] if names else (label.decode("utf-8", "replace")
                                                       if isinstance(label, bytes) else str(label)))
    return texts, labels


def load_labelled_texts(source: str, split: str = "train", text_column: int | str | None = None,
                        label_column: int | str | None = None, limit: int = 0,
                        encoding: str | None = None) -> Texts:
    """Texts and their label strings from a CSV/TSV file, `assets:NAME` or `tfds:NAME[/CONFIG]`.

    Args:
        source: a file (`read_text_table`; labels 1..K are named by a `classes.txt` beside it,
            `named_by_classes_file`), `assets:NAME`, or `tfds:NAME[/CONFIG]` (the texts are its
            `text` feature, else its title and description joined; labels its `label` feature,
            by class name when it has names).
        split: the TFDS split (unused for files).
        text_column: "" or None: automatic; a digit string or int: a 0-based index (files);
            else a header name or TFDS feature.
        label_column: likewise.
        limit: at most this many texts (the first ones); 0: all.
        encoding: a file's codec (`gbk`, `koi8-r`...); None or "auto": detected (`decode_text`).

    Returns:
        `(texts, labels)`: strings, one label per text.

    Raises:
        UserError: a missing, empty or unparseable file, a missing column or feature, a TFDS
            dataset that is not prepared, a negative limit.
    """
    if limit < 0:
        raise UserError(f"limit must be 0 (all) or more, got {limit}")
    if source.startswith("tfds:"):
        return _read_tfds(source, split, text_column, label_column, limit)
    return _read_table(source, text_column, label_column, limit, encoding)


def train_and_validation_texts(data: str, val_data: str = "", val_fraction: float = 0.2,
                               text_column: int | str | None = None, label_column: int | str | None = None,
                               limit: int = 0, split_seed: int = 0, encoding: str | None = None
                               ) -> tuple[Texts, Texts]:
    """The training and validation texts of a classifier, as `load_labelled_texts` reads them.

    Args:
        data: the training source (file, `assets:NAME` or `tfds:NAME`; its train split).
        val_data: the validation source (its test split); "": for TFDS, the test split of
            `data`; for a file, `val_fraction` of each class of `data` (`split_texts`).
        val_fraction: the share of each class of a file held out for validation.
        text_column: as in `load_labelled_texts`, for both sources.
        label_column: likewise.
        limit: at most this many texts per source (the first ones); 0: all.
        split_seed: seeds the held-out part of a file (fixed, so runs stay comparable).
        encoding: the files' codec; None or "auto": detected (`decode_text`).

    Returns:
        `((train texts, labels), (validation texts, labels))` as strings.
    """
    def read(source: str, split: str) -> Texts:
        return load_labelled_texts(source, split, text_column, label_column, limit, encoding)

    train = read(data, "train")
    if val_data:
        return train, read(val_data, "test")
    if data.startswith("tfds:"):
        return train, read(data, "test")
    return split_texts(*train, val_fraction, split_seed)


REPLACED_SHARE = 0.05  # of the texts holding U+FFFD from which encode_texts warns on stderr


def encode_texts(train: Texts, val: Texts, name: str = "zoo"
                 ) -> tuple[tuple[list[str], np.ndarray], tuple[list[str], np.ndarray], list[str]]:
    """Label ids of both parts (`encode_labels`); validation texts with a label the training
    texts lack are dropped. Prints a note (prefixed `name: note:`) on what it dropped and on
    texts read with U+FFFD replacement characters; a warning on stderr when `REPLACED_SHARE`
    of the texts or more hold them (a file in an encoding `decode_text` does not recognise).

    Args:
        train: `(texts, labels)` of training.
        val: `(texts, labels)` of validation.
        name: the prefix of the printed notes (e.g. the recipe's name).

    Returns:
        `((train texts, int32 ids), (validation texts, int32 ids), class names)`.

    Raises:
        UserError: fewer than 2 training classes, or no validation text left.
    """
    (train_texts, train_labels), (val_texts, val_labels) = train, val
    names, train_ids, val_ids = encode_labels(train_labels, val_labels)
    unseen = sorted({l for l, i in zip(val_labels, val_ids) if i < 0})
    if unseen:
        print(f"{name}: note: {int(np.sum(val_ids < 0))} validation text(s) have labels the "
              f"training data lacks ({', '.join(map(repr, unseen[:5]))}): dropped")
        val_texts = [t for t, i in zip(val_texts, val_ids) if i >= 0]
        val_ids = val_ids[val_ids >= 0]
    if not val_texts:
        raise UserError("no validation texts with a label of the training data: check --val-data and "
                        "the label column")
    replaced = sum("\ufffd" in t for t in train_texts + val_texts)
    if replaced >= REPLACED_SHARE * (len(train_texts) + len(val_texts)):
        print(f"{name}: WARNING: {replaced} of {len(train_texts) + len(val_texts)} texts hold bytes that are "
              "not UTF-8, read as U+FFFD replacement characters. The file is in an encoding that was not "
              "recognised (Windows-1250 for Polish or Czech, Windows-1251 or KOI8-R for Russian, "
              "Windows-1254 for Turkish...): pass it (--encoding cp1251), or save the file as UTF-8 "
              "(`iconv -f CP1251 -t UTF-8 FILE > FILE.utf8`)", file=sys.stderr, flush=True)
    elif replaced:
        print(f"{name}: note: {replaced} text(s) hold bytes that are not UTF-8; they were read "
              "with U+FFFD replacement characters")
    return (train_texts, train_ids), (val_texts, val_ids), names


def numeric_label_column(column: str | None, names: list[str], path: str) -> int:
    """The 0-based index of a numeric table's label column (`--label-column`).

    Args:
        column: a header name (compared case-insensitively) or a 0-based index; "" or None: the last.
        names: the table's column names (`read_numeric_table`).
        path: the file, for the message.

    Raises:
        UserError: no such column (the message lists those there are).
    """
    if not column:
        return len(names) - 1
    if column.strip().lstrip("-").isdigit() and 0 <= int(column) < len(names):
        return int(column)
    lower = [name.lower() for name in names]
    if column.strip().lower() in lower:
        return lower.index(column.strip().lower())
    shown = ", ".join(f"{i}: {name!r}" for i, name in enumerate(names))
    raise UserError(f"--label-column {column!r} does not exist in {path}: the columns are {shown}; "
                    "pass one of them by name or 0-based index")


def read_numeric_table(path: str | Path, delimiter: str | None = None) -> tuple[np.ndarray, list[str]]:
    """A table of numbers (e.g. features for a SOM), with or without a header row.

    The first row is a header when any of its cells is not a number.

    Args:
        path: the file (or `assets:NAME`).
        delimiter: the field separator; None: tab for `.tsv`, else sniffed.

    Returns:
        `(values, column_names)`: float32 `(N, D)`, and D names (the header's, else
        "column_0", "column_1", ...).

    Raises:
        UserError: the file is missing or empty, has no data rows, a row has another number
            of fields than the first, or a cell is not a finite number (line and column named).
    """
    rows = read_rows(path, delimiter)
    first = [cell.strip() for cell in rows[0][1]]
    has_header = not all(_is_number(cell) for cell in first)
    names = first if has_header else [f"column_{i}" for i in range(len(first))]
    data = rows[1:] if has_header else rows
    if not data:
        raise UserError(f"numeric table {path} has a header but no data rows")
    values = np.empty((len(data), len(names)), np.float32)
    for r, (line, fields) in enumerate(data):
        if len(fields) != len(names):
            raise UserError(f"{path} line {line} has {len(fields)} field(s), the first row "
                            f"{len(names)}: every row needs one value per column")
        for c, cell in enumerate(fields):
            if not _is_number(cell):
                raise UserError(f"{path} line {line}, column {names[c]!r}: {cell.strip()!r} is not a "
                                "finite number; a numeric table holds numbers only")
            values[r, c] = float(cell)
    return values, names


def _is_number(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


TABLE_SUFFIXES = (".csv", ".tsv")


def load_unlabelled_texts(source: str, text_column: int | str | None = None, limit: int = 0,
                          encoding: str | None = None) -> list[str]:
    """Texts without labels, for pre-training: a plain text file (one text per line), a column
    of a CSV/TSV file, `assets:NAME` or the texts of `tfds:NAME[/CONFIG]`'s train split.

    Args:
        source: a `.csv` / `.tsv` file (the text column as `read_text_table` finds it; a file
            with neither a text-like header nor `text_column` is read whole, each row's fields
            joined), any other file (one text per non-blank line; `decode_text`), `assets:NAME`, or
            `tfds:NAME[/CONFIG]`.
        text_column: a header name or 0-based index (tables and TFDS); None or "": automatic.
        limit: at most this many texts (the first ones); 0: all.
        encoding: a file's codec (`gbk`, `koi8-r`...); None or "auto": detected (`decode_text`).

    Returns:
        The texts, stripped, blank ones dropped.

    Raises:
        UserError: a missing or empty file, a missing column, a negative limit.
    """
    if limit < 0:
        raise UserError(f"limit must be 0 (all) or more, got {limit}")
    column = _column(text_column)
    if source.startswith("tfds:"):
        texts = _read_tfds(source, "train", column, None, limit)[0]
    elif Path(resolve_source(source)).suffix.lower() in TABLE_SUFFIXES:
        rows = read_rows(source, encoding=encoding)
        header = _header(rows, (column,))
        data, width = (rows[1:] if header else rows), len(rows[0][1])
        index = None if column is None else _index(source, header, width, column, "text")
        if index is None and header:
            index = next((_find(header, n) for n in TEXT_NAMES if _find(header, n) is not None), None)
        texts = [fields[index].strip() if index is not None and index < len(fields)
                 else " ".join(f.strip() for f in fields if f.strip()) for _, fields in data]
    else:
        path = Path(resolve_source(source))
        if not path.is_file():
            raise UserError(f"text file {path} does not exist: pass a text file (one text per line), "
                            "a CSV/TSV file or tfds:NAME")
        texts = read_text_file(path, encoding).splitlines()
    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        raise UserError(f"{source} holds no text: pass a file with one text per line or a table with a text column")
    return texts[:limit] if limit else texts
