"""zoo.fonts: Chinese, Japanese and Korean draw as characters, not missing-glyph boxes; Latin still
draws; widths add up; characters no font has do not raise; the per-character fallback."""

import os

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from zoo import fonts

SIZE = 24
MISSING = "\U0010fffe"  # a noncharacter: every font draws its .notdef box for it
DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
NOTO_CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


def render(text: str, size: int = SIZE) -> np.ndarray:
    """`text` drawn with draw_text at (0, 0) on a black canvas as wide as text_width says."""
    image = Image.new("L", (max(fonts.text_width(text, size), 1), 2 * size))
    fonts.draw_text(ImageDraw.Draw(image), (0, 0), text, fill=255, size=size)
    return np.asarray(image)


def cells(text: str, size: int = SIZE) -> list[np.ndarray]:
    """The whole `text` drawn once, cut into one image per character at the text_width boundaries."""
    image = render(text, size)
    edges = [fonts.text_width(text[:i], size) for i in range(len(text) + 1)]
    return [image[:, a:b] for a, b in zip(edges, edges[1:])]


@pytest.mark.parametrize("text", ["菜很好吃，送餐也很快",  # Chinese; Japanese kana; Korean; traditional
                                  "ひらがなカタカナです", "음식이 정말 맛있어요", "這家餐廳的服務很好"])
def test_cjk_draws_glyphs_not_boxes(text):
    box = render(MISSING)
    glyphs = {}
    for char, cell in zip(text, cells(text), strict=True):
        if char == " ":
            assert not cell.any()
            continue
        assert cell.any(), f"{char!r} is blank"
        assert cell.shape != box.shape or not np.array_equal(cell, box), f"{char!r} is the missing-glyph box"
        if char in glyphs:  # the same character twice: the same glyph
            assert np.array_equal(glyphs[char], cell)
        glyphs[char] = cell
    distinct = {(g.shape, g.tobytes()) for g in glyphs.values()}
    assert len(distinct) == len(glyphs), "different characters drew the same image"


def test_pil_default_font_draws_boxes_for_chinese():
    """The check above can fail: PIL's default font (no CJK) draws 菜 and 很 as the same box."""
    default = ImageFont.load_default(11)

    def draw(char):
        image = Image.new("L", (30, 30))
        ImageDraw.Draw(image).text((5, 5), char, font=default, fill=255)
        return np.asarray(image)

    assert np.array_equal(draw("菜"), draw("很"))
    assert draw("菜").any()  # a box, not nothing
    assert not np.array_equal(draw("a"), draw("b"))


def test_latin_and_symbols_draw():
    text = "Hello, world 123 éà ① ℃"
    image = render(text)
    assert image.any()
    glyphs = [c for ch, c in zip(text, cells(text), strict=True) if ch != " "]
    assert all(g.any() for g in glyphs)
    assert not np.array_equal(cells("H")[0], cells("W")[0])


def test_text_width_grows():
    assert fonts.text_width("") == 0
    widths = [fonts.text_width("菜很好吃"[:n]) for n in range(1, 5)]
    assert widths == sorted(widths) and len(set(widths)) == 4
    assert fonts.text_width("iPhone太好用了") > fonts.text_width("iPhone")
    assert fonts.text_width("菜", size=22) > fonts.text_width("菜", size=11)


@pytest.mark.parametrize("text", [MISSING, "a\U000f0000b", "iPhone太好用了 ดีมาก",  # no Thai font here
                                  "x\u200d\ufe0f\ny", ""])
def test_characters_no_font_has_do_not_raise(text):
    image = Image.new("RGB", (200, 30), "white")
    fonts.draw_text(ImageDraw.Draw(image), (2, 2), text, fill=(0, 0, 0))
    assert fonts.text_width(text) >= 0


def test_shipped_font_covers_its_character_sets():
    """A sample of GB2312, Big5 level 1, KS X 1001 Hangul and kana is drawn with the shipped font."""
    samples = {"gb2312": [bytes([r, c]) for r in range(0xB0, 0xF8, 3) for c in range(0xA1, 0xFF, 31)],
               "big5": [bytes([r, c]) for r in range(0xA4, 0xC6, 2) for c in (0x40, 0x7E, 0xA1, 0xFE)],
               "euc_kr": [bytes([r, c]) for r in range(0xB0, 0xC9, 2) for c in range(0xA1, 0xFF, 31)]}
    chars = [b.decode(codec, "ignore") for codec, codes in samples.items() for b in codes]  # "": undefined
    chars = [c for c in chars if c] + list("あアー。「」！？")
    shipped = fonts.font(SIZE)
    assert not [c for c in chars if fonts.font_for(c, SIZE) is not shipped]
    assert shipped.getname()[0] == "Noto Sans CJK SC"
    assert os.path.getsize(fonts.SHIPPED_FONT) <= 4 * 2**20
    assert (fonts.SHIPPED_FONT.parent / "OFL.txt").is_file()


@pytest.mark.skipif(not os.path.isfile(DEJAVU), reason="needs DejaVu Sans at the Debian path")
def test_characters_the_shipped_font_lacks_fall_back(monkeypatch):
    monkeypatch.setattr(fonts, "_SYSTEM_FONTS", ((DEJAVU, 0),))
    fonts._chain.cache_clear()
    try:
        assert fonts.font_for("ł").getname()[0] == "DejaVu Sans"  # Latin Extended-A: not in the subset
        assert fonts.font_for("菜") is fonts.font()
        runs = [(run, f.getname()[0]) for run, f in fonts._runs("Go ŁŚĆ 菜", 11)]
        assert runs == [("Go ", "Noto Sans CJK SC"), ("ŁŚĆ ", "DejaVu Sans"), ("菜", "Noto Sans CJK SC")]
        assert not np.array_equal(cells("ł")[0], render(MISSING))
    finally:
        fonts._chain.cache_clear()


@pytest.mark.skipif(not os.path.isfile(NOTO_CJK), reason="needs Debian's fonts-noto-cjk")
def test_rare_han_falls_back_to_the_machines_cjk_font():
    rare = "堃"  # a name character in neither GB2312 nor Big5 level 1
    assert fonts.font_for(rare) is not fonts.font()
    assert fonts.font_for(rare).getname()[0].startswith("Noto Sans CJK")
