"""idx files, text tables, and `load_images` over every kind of source."""

import codecs
import gzip
import struct
import warnings

import numpy as np
import pytest
import tensorflow_datasets as tfds
from helpers import run_python
from PIL import Image

from zoo.cli.predict import _lines
from zoo.data import (encode_labels, load_images, read_idx, read_mnist, read_numeric_table,
                      read_text_table, tfds_dataset)
from zoo.data.text import REPLACED, decode_text, load_unlabelled_texts
from zoo.errors import UserError

# ----------------------------------------------------------------------------- idx files


def _idx_bytes(array: np.ndarray, dtype_byte: int) -> bytes:
    """An idx file by the format's definition, written here independently of the reader."""
    header = struct.pack(">BBBB", 0, 0, dtype_byte, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_idx(path, array, dtype_byte=0x08):
    data = _idx_bytes(array, dtype_byte)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def _digits(n, seed=0, size=28):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def _mnist_folder(folder, n_train=6, n_test=4, gz=True):
    folder.mkdir(exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = _digits(n, seed)
        _write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return folder


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_mnist_round_trip(tmp_path, suffix):
    images, labels = _digits(3)
    path = _write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images)
    assert path.read_bytes()[:4 - 2 * bool(suffix)] == (b"\x1f\x8b" if suffix else b"\x00\x00\x08\x03")
    read = read_idx(path)
    assert read.dtype == np.uint8 and read.shape == (3, 28, 28)
    np.testing.assert_array_equal(read, images)
    np.testing.assert_array_equal(read_idx(_write_idx(tmp_path / f"l{suffix}", labels)), labels)
    np.testing.assert_array_equal(read_idx(path, limit=2), images[:2])  # the first ones only
    assert read_idx(path, limit=5).shape == (3, 28, 28)


def test_read_idx_with_a_limit_reads_only_the_bytes_it_needs(tmp_path):
    images, _ = _digits(3)
    good = _idx_bytes(images, 0x08)
    (tmp_path / "cut.gz").write_bytes(gzip.compress(good[:-100]))  # the third image is cut short
    np.testing.assert_array_equal(read_idx(tmp_path / "cut.gz", limit=2), images[:2])
    with pytest.raises(UserError, match=r"has 2268 bytes but its header \(3, 28, 28\) uint8 needs 2368"):
        read_idx(tmp_path / "cut.gz", limit=3)


@pytest.mark.parametrize("dtype, byte", [(np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C),
                                         (np.float32, 0x0D), (np.float64, 0x0E)])
def test_read_idx_every_dtype(tmp_path, dtype, byte):
    array = (np.arange(24).reshape(2, 3, 4) - 12).astype(dtype) * 3
    read = read_idx(_write_idx(tmp_path / "x.idx", array, byte))
    assert read.dtype == np.dtype(dtype) and read.dtype.isnative
    np.testing.assert_array_equal(read, array)


def test_read_idx_corruptions(tmp_path):
    images, _ = _digits(2)
    good = _idx_bytes(images, 0x08)
    cases = {
        "missing.idx": (None, "does not exist"),
        "bad.gz": (gzip.compress(good)[:-12], "not a valid gzip"),
        "text.gz": (b"hello, not gzip", "not a valid gzip"),
        "truncated": (good[:-5], r"has 1579 bytes but its header \(2, 28, 28\) uint8 needs 1584"),
        "too_long": (good + b"\0", "truncated or damaged"),
        "magic": (b"\x12\x34" + good[2:], "not an idx file"),
        "dtype": (good[:2] + b"\x07" + good[3:], "not an idx file"),
        "empty": (b"", "not an idx file"),
        "short_header": (good[:9], "truncated inside its header"),
    }
    for name, (data, message) in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        with pytest.raises(UserError, match=message) as error:
            read_idx(tmp_path / name)
        assert name in str(error.value)


def test_read_mnist_both_splits_and_missing_files(tmp_path):
    folder = _mnist_folder(tmp_path / "mnist")
    images, labels = read_mnist(folder, "test")
    assert images.shape == (4, 28, 28) and labels.shape == (4,) and labels.dtype == np.uint8
    np.testing.assert_array_equal(images, _digits(4, 1)[0])
    assert read_mnist(folder)[0].shape == (6, 28, 28)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match="lacks t10k-labels-idx1-ubyte"):
        read_mnist(folder, "test")
    with pytest.raises(UserError, match=r"lacks t10k-images-idx3-ubyte\(\.gz\), t10k-labels"):
        read_mnist(tmp_path, "test")
    with pytest.raises(UserError, match="unknown MNIST split 'val'"):
        read_mnist(folder, "val")
    _write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))  # raw, 3 labels, 4 images
    with pytest.raises(UserError, match="holds shape \\(3,\\) but .* holds 4 images"):
        read_mnist(folder, "test")


# ----------------------------------------------------------------------------- text tables

def test_read_text_table_headerless_ag_news_style(tmp_path):
    path = tmp_path / "news.csv"
    path.write_text('"3","Wall St. Bears","Short-sellers, Wall Street\'s dwindling band"\n'
                    '\n"4","Title two","Line one\nline two"\n')
    texts, labels = read_text_table(path)
    assert labels == ["3", "4"]
    assert texts == ["Wall St. Bears Short-sellers, Wall Street's dwindling band",
                     "Title two Line one\nline two"]
    assert read_text_table(path, text_column=1)[0] == ["Wall St. Bears", "Title two"]
    assert read_text_table(path, text_column="2", label_column=1)[1] == ["Wall St. Bears", "Title two"]


def test_read_text_table_header_by_default_name_and_index(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("id,Text,Label\n1,good film,pos\n2,\"bad, long\",neg\n")
    assert read_text_table(path) == (["good film", "bad, long"], ["pos", "neg"])
    assert read_text_table(path, text_column="id", label_column=2) == (["1", "2"], ["pos", "neg"])
    path.write_text("label,title,body_text\n1,a,b\n2,c,d\n")  # no text-like name: the rest joined
    assert read_text_table(path) == (["a b", "c d"], ["1", "2"])


def test_read_text_table_header_in_any_language_and_label_column_by_values(tmp_path, capsys):
    """A header of names in the user's language is a header (its values are unlike the data's),
    and the one column whose values repeat like labels is the label column, with a note."""
    path = tmp_path / "zh.csv"
    path.write_text("评论,标签\n" + "".join(f"{t},{l}\n" for t, l in [("很好", "好"), ("不错", "好"), ("太差了", "差"),
                                                                  ("质量差", "差"), ("还行", "好"), ("物流慢", "差")]))
    assert read_text_table(path) == (["很好", "不错", "太差了", "质量差", "还行", "物流慢"], ["好", "好", "差", "差", "好", "差"])
    assert "label column 1 ('标签'), the only one whose values repeat like labels" in capsys.readouterr().out
    path = tmp_path / "ja.csv"  # Excel on a Japanese Windows: CP932, a title, a review and stars
    path.write_bytes(("タイトル,レビュー,評価\n" + "".join(f"題{i},良い商品です{i},{1 + 4 * (i % 2)}\n"
                                                        for i in range(8))).encode("cp932"))
    texts, labels = read_text_table(path)
    assert texts[:2] == ["題0 良い商品です0", "題1 良い商品です1"] and labels[:2] == ["1", "5"]
    path = tmp_path / "last.csv"  # no header, the labels last: not the texts taken for labels
    path.write_text("good product,pos\nbad product,neg\nnice,pos\nawful,neg\n")
    assert read_text_table(path) == (["good product", "bad product", "nice", "awful"], ["pos", "neg", "pos", "neg"])
    path = tmp_path / "ids.csv"  # a header row that holds one of the label column's values is data
    path.write_text("1,first\n2,second\n1,third\n2,fourth\n")
    assert read_text_table(path) == (["first", "second", "third", "fourth"], ["1", "2", "1", "2"])
    path = tmp_path / "two.csv"  # names, but two columns of label-like values: the user chooses
    path.write_text("评论,标签,星级\n" + "".join(f"评论{i},{'好差'[i % 2]},{i % 2}\n" for i in range(6)))
    with pytest.raises(UserError, match=r"no label column found.*0: '评论', 1: '标签', 2: '星级'"):
        read_text_table(path)
    assert read_text_table(path, label_column="标签")[1][:2] == ["好", "差"]


def test_read_text_table_tsv_by_suffix_and_sniffed(tmp_path):
    (tmp_path / "a.tsv").write_text("sentence\tsentiment\nit, was; good\t1\nno\t0\n")
    assert read_text_table(tmp_path / "a.tsv") == (["it, was; good", "no"], ["1", "0"])
    (tmp_path / "b.txt").write_text("text\tlabel\nhello world\tx\nbye now\ty\n")
    assert read_text_table(tmp_path / "b.txt") == (["hello world", "bye now"], ["x", "y"])
    (tmp_path / "c.txt").write_text("x|hello\ny|bye\n")
    assert read_text_table(tmp_path / "c.txt", delimiter="|") == (["hello", "bye"], ["x", "y"])


def test_read_text_table_missing_column_lists_existing(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,text,label\n1,a,x\n")
    with pytest.raises(UserError, match=r"'words' does not exist.*t.csv.*0: 'id', 1: 'text', 2: 'label'"):
        read_text_table(path, text_column="words")
    with pytest.raises(UserError, match="label column 7 does not exist.*3 column"):
        read_text_table(path, label_column=7)
    path.write_text("id,words\n1,a\n")
    with pytest.raises(UserError, match="'tag' does not exist.*0: 'id', 1: 'words'"):
        read_text_table(path, text_column="words", label_column="tag")
    path.write_text("1,a\n2,b\n")
    with pytest.raises(UserError, match="'text' does not exist.*no header row.*0..1"):
        read_text_table(path, text_column="text")
    with pytest.raises(UserError, match="same"):
        read_text_table(path, text_column=0)


def test_read_text_table_short_rows_empty_and_header_only(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("1,a,b\n2,c,d\n3\n")
    with pytest.raises(UserError, match="t.csv line 3 has 1 field"):
        read_text_table(path, text_column=2)
    path.write_text(" \n\n")
    with pytest.raises(UserError, match="t.csv is empty"):
        read_text_table(path)
    path.write_text("text,label\n")
    with pytest.raises(UserError, match="header but no data rows"):
        read_text_table(path)
    with pytest.raises(UserError, match="does not exist"):
        read_text_table(tmp_path / "nope.csv")


def test_read_text_table_non_utf8_bytes_are_replaced(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\ncaf\xe9 cr\xe8me,x\nna\xc3\xafve,y\n")  # BOM, Latin-1, UTF-8
    texts, labels = read_text_table(path)
    assert texts == ["caf\ufffd cr\ufffdme", "na\u00efve"] and labels == ["x", "y"]


ZH = "这本书很好看，推荐大家买。物流太慢了，包装也破了！"


@pytest.mark.parametrize("encoding, read_as", [
    ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("utf-16", "utf-16"), ("utf-32", "utf-32"),
    ("gbk", "gb18030"), ("gb18030", "gb18030")])
def test_decode_text_reads_chinese_as_editors_save_it(encoding, read_as):
    text = "标签,评论\n1," + ZH + "\n"
    assert decode_text(text.encode(encoding)) == (text, read_as)


# Reviews as users save them: each language in the code page Excel writes on its Windows.
JA = "商品はとても使いやすくて、値段も手頃でした。\n届いた箱が壊れていて、部品が一つ足りません。\nデザインがかわいい！\n"
KO = "이 제품은 정말 사용하기 편하고 가격도 적당했어요.\n배송된 상자가 찌그러져 있었습니다.\n디자인이 예뻐요!\n"
TW = "這個商品非常好用，價格也很合理。\n收到的盒子壞了，裡面的零件少了一個。\n設計很可愛！\n"
FR = "Très pratique, le prix était raisonnable.\nLa boîte était abîmée ; déçu.\nQualité médiocre à 25 €.\n"
DE = "Sehr praktisch, der Preis war angemessen.\nDie Größe war zu klein, ich schicke es zurück.\n"
RU = "Этот товар очень удобный и недорогой.\nКоробка была повреждена - очень разочарован.\n"
EL = "Αυτό το προϊόν είναι πολύ πρακτικό.\nΤο κουτί ήταν χαλασμένο.\n"
ES = "Muy práctico, el precio era razonable. ¡Lo volvería a comprar!\n¿Qué pasó? Llegó dañado, 1º aviso.\n"
PL = "Ten produkt jest bardzo wygodny, a cena była rozsądna.\nPudełko było uszkodzone. Żałuję zakupu.\n"
TR = "Bu ürün çok kullanışlı ve fiyatı uygundu.\nKutu hasarlıydı, bir parça eksikti.\n"


@pytest.mark.parametrize("text, encoding, read_as", [
    (JA, "cp932", "cp932"), (JA, "shift_jis", "cp932"), (JA, "euc_jp", "euc_jp"), (KO, "cp949", "cp949"),
    (KO, "euc_kr", "cp949"), (TW, "cp950", "cp950"), (TW, "big5", "cp950"), (FR, "cp1252", "cp1252"),
    (FR.replace("€", "EUR"), "latin-1", "cp1252"), (DE, "cp1252", "cp1252"), (ES, "cp1252", "cp1252")])
def test_decode_text_reads_the_code_pages_excel_saves_in(text, encoding, read_as):
    assert decode_text(text.encode(encoding)) == (text, read_as)


@pytest.mark.parametrize("text, encoding", [(RU, "cp1251"), (RU, "koi8-r"), (EL, "cp1253"), (PL, "cp1250"),
                                            (TR, "cp1254")])
def test_decode_text_marks_encodings_it_does_not_recognise(text, encoding):
    """Cyrillic and Greek code pages, and the Central European and Turkish ones, which decode as
    Windows-1252 too (`by³a`, `kullanýþlý`): UTF-8 with U+FFFD (encode_texts warns; --encoding
    reads them)."""
    decoded, read_as = decode_text(text.encode(encoding))
    assert read_as == REPLACED and "\ufffd" in decoded
    assert decode_text(text.encode(encoding), encoding) == (text, encoding)


def test_decode_text_keeps_a_utf8_file_with_a_bad_byte_utf8():
    """One stray byte in a UTF-8 file costs one character: the file is not read as Windows-1252
    (mojibake) or another code page."""
    for text in (ZH * 3, FR * 3):
        decoded, read_as = decode_text(text[:7].encode("utf-8") + b"\xff" + text[7:].encode("utf-8"))
        assert read_as == REPLACED and decoded == text[:7] + "\ufffd" + text[7:]


def test_decode_text_reads_short_gbk_reviews_as_gbk():
    """Two short Chinese reviews at a time, in GBK, are never taken for Korean, Japanese or Big5
    (GBK bytes decode as CP949 and CP950 too)."""
    reviews = ["很好", "不错，推荐", "质量很差", "物流太慢了", "满意", "还可以吧", "非常好用，价格便宜", "一般般",
               "客服态度很好", "不值这个价", "包装破了", "好评！", "下次还来买", "味道不错", "颜色和图片不一样"]
    for first in reviews:
        for second in reviews:
            text = f"{first}\n{second}\n"
            assert decode_text(text.encode("gbk")) == (text, "gb18030"), text


def test_bench_encodings_counts_what_each_group_is_found_as(tmp_path):
    """tools/bench_encodings.py, whose counts docs/text.md quotes, on a table of short reviews."""
    table = tmp_path / "reviews.csv"
    table.write_text("review\n" + "".join(f"{r}\n" for r in ["很好", "不错，推荐", "质量很差", "物流太慢了", "满意"]) + "好😀\n",
                     encoding="utf-8")  # an emoji: not in GBK, so a group holding it is skipped
    result = run_python(["tools/bench_encodings.py", table, "--sizes", "2", "--draws", "40"])
    assert result.returncode == 0, result.stderr[-2000:]
    row = next(line for line in result.stdout.splitlines() if line.startswith("| 2 |"))
    found, skipped = row.split(" | ")[1], int(row.split(" | ")[2].strip(" |"))
    assert found.startswith("gb18030 ") and 0 < skipped < 40
    assert sum(int(part.rsplit(" ", 1)[1]) for part in found.split(", ")) + skipped == 40


def test_explicit_encoding_reads_tables_and_names_bad_bytes(tmp_path):
    path = tmp_path / "ru.csv"
    path.write_bytes(("text,label\n" + RU.replace("\n", ",1\n")).encode("koi8-r"))
    texts, labels = read_text_table(path, encoding="koi8-r")
    assert texts == RU.splitlines() and labels == ["1", "1"]
    assert load_unlabelled_texts(str(path), encoding="koi8-r") == RU.splitlines()
    with pytest.raises(UserError, match=r"unknown encoding 'koi9'.*Python codec name"):
        read_text_table(path, encoding="koi9")
    with pytest.raises(UserError, match=r"ru.csv is not utf-8: bytes .* at offset 11 are invalid"):
        read_text_table(path, encoding="utf-8")
    assert decode_text(codecs.BOM_UTF8 + b"text,label", "utf-8") == ("text,label", "utf-8")  # no U+FEFF
    lines = tmp_path / "lines.txt"  # python -m zoo predict / explain --file F [--encoding E]
    lines.write_bytes(RU.encode("koi8-r"))
    assert _lines(str(lines), "koi8-r") == RU.splitlines()
    with pytest.raises(UserError, match=r"encoding was not recognised.*pass --encoding"):
        _lines(str(lines))
    with pytest.raises(UserError, match=r"unknown encoding 'koi9'"):
        _lines(str(lines), "koi9")


def test_read_text_table_gbk_and_excel_unicode_text(tmp_path, capsys):
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(("评论,标签\n" + ZH + ",好\n质量不错，价格便宜,差\n").encode("gbk"))
    assert read_text_table(gbk, "评论", "标签") == ([ZH, "质量不错，价格便宜"], ["好", "差"])
    assert f"{gbk} is not UTF-8: read as GB18030" in capsys.readouterr().out
    excel = tmp_path / "excel.txt"  # Excel's "Unicode Text": UTF-16 with a byte-order mark, tabs
    excel.write_bytes("text\tlabel\n这个手机很好用\tpos\n".encode("utf-16"))
    assert read_text_table(excel) == (["这个手机很好用"], ["pos"])
    assert load_unlabelled_texts(str(gbk), "评论") == [ZH, "质量不错，价格便宜"]
    lines = tmp_path / "predict.txt"  # python -m zoo predict MODEL --file: lines in GBK too
    lines.write_bytes(f"{ZH}\n\n质量不错\n".encode("gbk"))
    assert _lines(str(lines)) == [ZH, "质量不错"]


def test_encode_labels_natural_order_and_unseen():
    names, train, other = encode_labels(["10", "2", "1", "2"], ["2", "99", "10"])
    assert names == ["1", "2", "10"]
    assert train.tolist() == [2, 1, 0, 1] and train.dtype == np.int32
    assert other.tolist() == [1, -1, 2]
    names, _, none = encode_labels(["b", "Apple", "c", 3])
    assert names == ["3", "Apple", "b", "c"] and none is None


def test_encode_labels_needs_two_classes():
    with pytest.raises(UserError, match="at least 2 classes.*only 'spam'"):
        encode_labels(["spam", "spam"])
    with pytest.raises(UserError, match="at least 2 classes"):
        encode_labels([])


def test_read_numeric_table(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2.5,-3\n4e1, 5 ,6\n")
    values, names = read_numeric_table(path)
    assert names == ["a", "b", "c"] and values.dtype == np.float32
    np.testing.assert_array_equal(values, [[1, 2.5, -3], [40, 5, 6]])
    (tmp_path / "y.tsv").write_text("1\t2\n3\t4\n")
    values, names = read_numeric_table(tmp_path / "y.tsv")
    assert names == ["column_0", "column_1"] and values.shape == (2, 2)


def test_read_numeric_table_errors(tmp_path):
    path = tmp_path / "x.csv"
    for text, message in [("a,b\n1,2\n3,x\n", "line 3, column 'b': 'x' is not a finite number"),
                          ("a,b\n1,2\n3,\n", "line 3, column 'b': '' is not"),
                          ("1,2\nnan,2\n", "line 2, column 'column_0': 'nan'"),
                          ("a,b\n1,2\n3\n", "line 3 has 1 field"),
                          ("a,b\n", "no data rows"), ("", "is empty")]:
        path.write_text(text)
        with pytest.raises(UserError, match=message):
            read_numeric_table(path)


# ----------------------------------------------------------------------------- load_images

def test_load_images_mnist_folder_and_single_file(tmp_path):
    folder = _mnist_folder(tmp_path / "mnist", gz=False)
    images, labels, names = load_images(str(folder), split="test")
    assert images.shape == (4, 28, 28, 1) and images.dtype == np.float32
    np.testing.assert_allclose(images[..., 0], _digits(4, 1)[0] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(labels, _digits(4, 1)[1])
    assert labels.dtype == np.int32 and names == [str(i) for i in range(len(names))]
    images, labels, _ = load_images(str(folder), channels=3, size=(8, 8), limit=2,
                                    value_range=(-1.0, 1.0))
    assert images.shape == (2, 8, 8, 3) and labels.shape == (2,)
    assert images.min() >= -1.0 and images.max() <= 1.0
    single, labels, _ = load_images(str(folder / "train-images-idx3-ubyte"))
    assert single.shape == (6, 28, 28, 1) and labels.shape == (6,)
    (folder / "train-labels-idx1-ubyte").unlink()
    assert load_images(str(folder / "train-images-idx3-ubyte"))[1:] == (None, None)


def test_load_images_class_folders_mixed_sizes_and_modes(tmp_path):
    root = tmp_path / "shapes"
    for split, n in (("train", 2), ("test", 1)):
        for label in ("zebra", "cat"):
            (root / split / label).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (10 + i, 7), (200, 0, 0)).save(root / split / label / f"{i}.png")
        Image.new("LA", (5, 5), (90, 255)).save(root / split / "cat" / "la.png")
        Image.fromarray(np.full((9, 9), 65535, np.uint16)).save(root / split / "zebra" / "16.png")
    images, labels, names = load_images(str(root), channels=3, size=(4, 6))
    assert names == ["cat", "zebra"] and images.shape == (6, 4, 6, 3)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(images[0, 0, 0], np.array([200, 0, 0]) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(images[2], 90 / 255.0, rtol=1e-6)  # la.png: gray replicated
    np.testing.assert_allclose(images[5], 1.0)  # 16-bit white stays white, not clipped
    test_images, test_labels, _ = load_images(str(root), split="test", channels=1, size=(4, 6))
    assert test_images.shape == (4, 4, 6, 1) and test_labels.tolist() == [0, 0, 1, 1]
    with pytest.raises(UserError, match="different sizes: .*is 10x7, .*pass a size"):
        load_images(str(root))
    with pytest.raises(UserError, match="no 'validation' subfolder"):
        load_images(str(root), split="validation", size=(4, 4))
    limited, labels, _ = load_images(str(root), size=(4, 4), limit=4)
    assert limited.shape == (4, 4, 4, 1) and set(labels.tolist()) == {0, 1}


def test_load_images_flat_folder_and_value_range(tmp_path):
    Image.fromarray(np.array([[0, 255]], np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.array([[51, 102, 0, 255]], np.uint8).reshape(1, 1, 4), "RGBA").save(tmp_path / "b.png")
    images, labels, names = load_images(str(tmp_path), size=(1, 2), value_range=(-1.0, 1.0))
    assert labels is None and names is None and images.shape == (2, 1, 2, 1)
    np.testing.assert_allclose(images[0, 0, :, 0], [-1.0, 1.0])
    rgba, _, _ = load_images(str(tmp_path), channels=4, value_range=(0.0, 255.0), size=(1, 2))
    np.testing.assert_allclose(rgba[1, 0, 0], [51, 102, 0, 255])
    np.testing.assert_allclose(rgba[0, 0, 1], [255, 255, 255, 255])


def test_load_images_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_images(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no images"):
        load_images(str(tmp_path / "empty"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    (tmp_path / "other" / "sub").mkdir()
    with pytest.raises(UserError, match="holds no images, no class subfolders"):
        load_images(str(tmp_path / "other"))
    with pytest.raises(UserError, match="is not an image source"):
        load_images(str(tmp_path / "other" / "notes.txt"))
    _mnist_folder(tmp_path / "half")
    (tmp_path / "half" / "t10k-images-idx3-ubyte.gz").unlink()
    (tmp_path / "half" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match="lacks t10k-images"):
        load_images(str(tmp_path / "half"), split="test")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_text("not a png")
    with pytest.raises(UserError, match="1 unreadable.*x.png"):
        load_images(str(tmp_path / "bad"))
    for kwargs, message in [({"channels": 5}, "channels"), ({"size": (0, 4)}, "size"),
                            ({"limit": 0}, "limit")]:
        with pytest.raises(UserError, match=message):
            load_images(str(tmp_path / "bad"), **kwargs)


def test_load_images_embedded_asset():
    images, labels, _ = load_images("assets:sr/Set5", channels=3, size=(16, 16), limit=2)
    assert images.shape == (2, 16, 16, 3) and labels is None


# ----------------------------------------------------------------------------- TFDS

def test_load_images_tfds_mocked():
    with warnings.catch_warnings(), tfds.testing.mock_data(num_examples=5):
        warnings.simplefilter("ignore")
        images, labels, names = load_images("tfds:mnist", split="test", channels=3, size=(8, 8))
    assert images.shape == (5, 8, 8, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.shape == (5,) and labels.dtype == np.int32 and 0 <= labels.min() <= labels.max() <= 9
    assert names == [str(i) for i in range(10)]


def test_tfds_not_prepared_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(tmp_path))

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    with pytest.raises(UserError, match="TFDS dataset mnist is not available offline "
                                        rf"\(not prepared in {tmp_path}.*pass a folder"):
        load_images("tfds:mnist")
    with pytest.raises(UserError, match="cannot load TFDS dataset 'no_such_dataset_zz': .*not found\\.$"):
        tfds_dataset("tfds:no_such_dataset_zz", "train")


# ----------------------------------------------------------------------------- array files

def _random_array(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.random(shape).astype(dtype)


@pytest.mark.parametrize("shape, dtype", [((5, 6, 7), np.uint8), ((5, 6, 7, 1), np.uint8), ((5, 6, 7, 3), np.uint8),
                                          ((5, 6, 7), np.float32), ((5, 6, 7, 3), np.float64),
                                          ((5, 6, 7, 2), np.float16), ((5, 6, 7, 4), np.uint8)])
def test_load_images_npy_shapes_and_dtypes(tmp_path, shape, dtype):
    array = _random_array(shape, dtype)
    np.save(tmp_path / "x.npy", array)
    channels = shape[3] if len(shape) == 4 else 1
    images, labels, names = load_images(str(tmp_path / "x.npy"), channels=channels, value_range=(0.0, 255.0))
    assert images.shape == (5, 6, 7, channels) and images.dtype == np.float32
    assert labels is None and names is None  # an .npy holds no labels
    # 8-bit values as an image file would store them: floats in [0, 1] rounded to 0..255
    expected = array if dtype == np.uint8 else np.round(array.astype(np.float32) * 255.0)
    np.testing.assert_array_equal(images, expected.reshape(images.shape).astype(np.float32))


def test_load_images_array_converts_and_resizes_like_a_folder(tmp_path):
    array = _random_array((4, 9, 13, 4), np.uint8)  # RGBA
    np.save(tmp_path / "x.npy", array)
    (tmp_path / "folder").mkdir()
    for i, image in enumerate(array):
        Image.fromarray(image, "RGBA").save(tmp_path / "folder" / f"{i}.png")
    for channels in (1, 2, 3, 4):
        from_array = load_images(str(tmp_path / "x.npy"), channels=channels, size=(5, 6))[0]
        from_files = load_images(str(tmp_path / "folder"), channels=channels, size=(5, 6))[0]
        np.testing.assert_array_equal(from_array, from_files)
    np.testing.assert_array_equal(load_images(str(tmp_path / "x.npy"), "test", 3, limit=2)[0],
                                  load_images(str(tmp_path / "x.npy"), "train", 3)[0][:2])  # no splits; first rows


def test_load_images_npz_labels(tmp_path):
    images, digits = _random_array((6, 4, 4), np.uint8), np.array([3, 0, 1, 3, 2, 0])
    np.savez(tmp_path / "named.npz", images=images, labels=digits)
    np.savez(tmp_path / "xy.npz", x=images, y=digits.astype(np.uint8))
    np.savez(tmp_path / "alone.npz", images)
    for name in ("named.npz", "xy.npz"):
        loaded, labels, names = load_images(str(tmp_path / name), split="test", value_range=(0.0, 255.0))
        np.testing.assert_array_equal(loaded[..., 0], images)
        assert labels.dtype == np.int32 and labels.tolist() == digits.tolist() and names == ["0", "1", "2", "3"]
    assert load_images(str(tmp_path / "alone.npz"))[1:] == (None, None)
    np.savez(tmp_path / "short.npz", images=images, labels=digits[:5])
    with pytest.raises(UserError, match=r"short.npz: its 'labels' array is int64 \(5,\).*shape \(6,\)"):
        load_images(str(tmp_path / "short.npz"))


@pytest.mark.parametrize("array, message", [
    (np.zeros((2, 4, 4), np.int16), "has dtype int16: images must be uint8"),
    (np.full((2, 4, 4), 1.5, np.float32), "values from 1.5 to 1.5"),
    (np.zeros((2, 4, 4, 1, 1), np.uint8), r"has shape \(2, 4, 4, 1, 1\): images must be"),
    (np.zeros((2, 4, 4, 5), np.uint8), r"has shape \(2, 4, 4, 5\)"),
])
def test_load_images_bad_arrays_one_clear_error(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(UserError, match=message) as error:
        load_images(str(tmp_path / "bad.npy"))
    assert "bad.npy" in str(error.value) and "\n" not in str(error.value)
