"""TextTokenizer (zoo/layers/tokenizer.py): in-graph NFKC against Python's unicodedata, splitting
in any script, saving; and zoo.data.tokens (the `auto` choice, degenerate vocabularies)."""

import csv
import unicodedata

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT

from zoo.data.tokens import choose_split, vocabulary_stats
from zoo.layers import TextTokenizer

CHINESE = ROOT.parent / "shared" / "data" / "text_zh" / "online_shopping_9_cats.csv"


def tokens(texts, split="chars", **kwargs) -> list[list[str]]:
    rows = TextTokenizer(split, **kwargs)(tf.constant(texts)).to_list()
    return [[t.decode() for t in row] for row in rows]


def standardized(texts, **kwargs) -> list[str]:
    layer = TextTokenizer(lowercase=False, strip_punctuation=False, **kwargs)
    return [t.decode() for t in layer.standardize(tf.constant(texts)).numpy()]


@pytest.mark.parametrize("text, expected", [
    ("iPhone太好用了！", ["iphone", "太", "好", "用", "了"]),
    ("菜很好吃，送餐也很快", ["菜", "很", "好", "吃", "送", "餐", "也", "很", "快"]),
    ("ＡＢＣ，ｄｅｆ　ﬁne", ["abcdef", "fine"]),  # full-width forms, ideographic space, ligature
    ("Café e\u0301té Ｅ\u0323\u0302", ["café", "été", "ệ"]),  # composed, decomposed, two marks
    ("Markets: bank #39;s profit &lt;b&gt;doubles\\again", ["markets", "bank", "s", "profit", "b", "doubles", "again"]),
    ("ラーメンが好き😋 great👍", ["ラ", "ー", "メ", "ン", "が", "好", "き", "😋", "great", "👍"]),
    ("สวัสดีครับ", ["ส", "วั", "ส", "ดี", "ค", "รั", "บ"]),  # a Thai vowel mark stays with its letter
    ("한국어 텍스트입니다.", ["한국어", "텍스트입니다"]),  # Korean is written with spaces: words
    ("«Guillemets» — and “quotes”; ¿qué?", ["guillemets", "and", "quotes", "qué"]),
    ("", []),
])
def test_chars_split_any_script(text, expected):
    assert tokens([text]) == [expected]


def test_words_split_only_at_spaces():
    assert tokens(["今天 天气 很好！", "iPhone太好用了"], "words") == [["今天", "天气", "很好"], ["iphone太好用了"]]


def test_tokens_rejoined_with_spaces_read_the_same():
    """Explainers remove tokens and re-join the rest with spaces: that must give the same tokens."""
    texts = ["iPhone太好用了！下次还买", "Reuters - Oil #39;s price up 2.5%", "ラーメンが好き😋", "e\u0301te\u0301"]
    for split in ("chars", "words"):
        first = tokens(texts, split)
        assert tokens([" ".join(row) for row in first], split) == first


def test_nfkc_equals_unicodedata_on_edge_cases():
    cases = ["①②③ ㈱ ㍻ ℡ ½ ﬀ ﬃ Ⅻ ｶﾞｷﾞ ㌔ 𝐀𝐁𝐂 ⁵₅ Å Ω K", "\u1100\u1161\u11a8 \u1112\u1161\u11ab",
             "a\u0308\u0301 o\u0323\u0302 \u0041\u030a", "漢字 豈 更 \ufa10 \U0002f800", "\ufeffbom \u00a0nbsp\u3000x"]
    assert standardized(cases) == [unicodedata.normalize("NFKC", c) for c in cases]


@pytest.mark.skipif(not CHINESE.is_file(), reason="the shared Chinese corpus is not beside the repository")
def test_nfkc_equals_unicodedata_on_real_reviews():
    with CHINESE.open(encoding="utf-8") as stream:
        reviews = [row["review"] for _, row in zip(range(3000), csv.DictReader(stream))]
    news = (ROOT / "zoo" / "assets" / "text" / "ag_news" / "test.csv").read_text(encoding="utf-8").splitlines()[:1000]
    texts = [t.replace("\\", " ") for t in reviews + news]  # backslashes are markup to the tokenizer
    texts = [t for t in texts if "&" not in t and "#" not in t]
    assert standardized(texts) == [unicodedata.normalize("NFKC", t) for t in texts]


def test_config_round_trip_and_bad_split():
    layer = TextTokenizer("words", lowercase=False, name="tok")
    assert TextTokenizer.from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="split"):
        TextTokenizer("letters")


def test_layer_loads_by_its_registered_name():
    config = keras.saving.serialize_keras_object(TextTokenizer("chars", normalize=False))
    loaded = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert isinstance(loaded, TextTokenizer) and loaded.split == "chars" and not loaded.normalize
    assert [t.decode() for t in loaded(tf.constant(["ＡＢ太"])).to_list()[0]] == ["ａｂ", "太"]


# ----------------------------------------------------------------------------- choosing and checking

def test_auto_chooses_chars_for_unspaced_chinese_and_words_otherwise():
    chinese = ["菜很好吃，送餐也很快，下次还点", "太难吃了，等了两个小时，再也不点了"] * 20
    assert choose_split(chinese)[0] == "chars"
    assert "Han" in choose_split(chinese)[1]
    assert choose_split(["the team won the final match"] * 40) == (
        "words", "no letters of a script written without spaces (Chinese, Japanese, Thai...)")
    segmented = ["今天 天气 很 好 ， 我们 去 公园 散步", "这 家 餐厅 的 菜 非常 好吃"] * 20
    split, reason = choose_split(segmented)
    assert split == "words" and "segmented" in reason
    assert choose_split(["Apple 发布 了", "iPhone太好用了，推荐购买"] * 20)[0] == "chars"


def test_degenerate_vocabulary_names_cause_and_fix():
    whole = [[f"整句评论{i}"] for i in range(200)]  # each Chinese review read as one token
    stats = vocabulary_stats(whole, "words")
    assert stats.median_tokens == 1 and stats.singleton_share == 1.0
    assert "--tokens chars" in stats.problem and "majority class" in stats.problem
    assert "--text-column" in vocabulary_stats(whole, "chars").problem
    fine = vocabulary_stats([["菜", "很", "好", "吃"], ["太", "难", "吃", "了"]] * 50, "chars")
    assert fine.problem is None and fine.median_tokens == 4 and fine.distinct == 7
    assert vocabulary_stats([["a", "b", "c"], ["d", "e", "f"]]).problem is not None  # every token once


def test_vocabulary_stats_counts():
    stats = vocabulary_stats([["a"] * 5, ["a", "b", "b"], []])
    assert (stats.texts, stats.median_tokens, stats.distinct) == (3, 3.0, 2)
    assert np.isclose(stats.singleton_share, 0.0)
