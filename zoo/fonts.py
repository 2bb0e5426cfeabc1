"""Fonts for the text zoo draws into pictures: CJK that reads as characters, not boxes.

The choice: a subset of Noto Sans CJK SC Regular ships with zoo (zoo/assets/fonts/, SIL Open
Font License; Latin-1, kana, GB2312 + Big5 level 1 Han, KS X 1001 Hangul: see its README.md),
and every character that font lacks is drawn with the first font of a fallback chain that has it:
fonts found on this machine (Noto CJK / Noto / DejaVu on Linux, PingFang / Hiragino / Arial
Unicode on macOS, Microsoft YaHei / SimHei / Arial on Windows), then PIL's default font. Why:
PIL's default font has no CJK glyphs (Chinese comes out as missing-glyph boxes), and a machine
may have no CJK font at all. Whether a font has a character is decided by rendering it: the
same mask as a surely-missing code point's (the font's .notdef box), or an empty mask for a
visible character, means missing. Answers are cached per (font, character).

    draw_text(ImageDraw.Draw(image), (4, 4), "iPhone太好用了 ดีมาก", fill=(0, 0, 0))
"""

import functools
import os
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SHIPPED_FONT = Path(__file__).parent / "assets" / "fonts" / "NotoSansCJKsc-Regular-subset.otf"
_WINDOWS = os.path.join(os.environ.get("WINDIR", r"C:\Windows"), "Fonts")
_SYSTEM_FONTS = (  # (path, face index in a .ttc); only those that exist are used, in this order
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # Debian/Ubuntu; 2 = SC
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),  # Arch
    ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", 2),  # Fedora
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
    ("/System/Library/Fonts/PingFang.ttc", 0), ("/System/Library/Fonts/Hiragino Sans GB.ttc", 0),
    ("/System/Library/Fonts/AppleSDGothicNeo.ttc", 0),
    (os.path.join(_WINDOWS, "msyh.ttc"), 0), (os.path.join(_WINDOWS, "simhei.ttf"), 0),
    (os.path.join(_WINDOWS, "msgothic.ttc"), 0), (os.path.join(_WINDOWS, "malgun.ttf"), 0),
    ("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf", 0),  # Debian fonts-noto-core
    ("/usr/share/fonts/noto/NotoSans-Regular.ttf", 0),
    ("/usr/share/fonts/google-noto/NotoSans-Regular.ttf", 0),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 0), ("/usr/share/fonts/dejavu/DejaVuSans.ttf", 0),
    ("/usr/share/fonts/TTF/DejaVuSans.ttf", 0), ("/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf", 0),
    *((f"/usr/share/fonts/truetype/noto/NotoSans{s}-Regular.ttf", 0)
      for s in ("Thai", "Arabic", "Devanagari", "Hebrew", "Bengali", "Tamil", "Armenian", "Georgian")),
    ("/usr/share/fonts/truetype/freefont/FreeSans.ttf", 0),
    ("/System/Library/Fonts/Supplemental/Arial Unicode.ttf", 0), ("/Library/Fonts/Arial Unicode.ttf", 0),
    (os.path.join(_WINDOWS, "arial.ttf"), 0), (os.path.join(_WINDOWS, "tahoma.ttf"), 0),
    (os.path.join(_WINDOWS, "Nirmala.ttf"), 0), (os.path.join(_WINDOWS, "LeelawUI.ttf"), 0),
    (os.path.join(_WINDOWS, "seguisym.ttf"), 0),
)
_DEFAULT = ("", 0)  # PIL's default font, last in the chain
_MISSING = "\U0010fffe"  # a noncharacter: no font maps it, so it draws the .notdef box
_INVISIBLE = {"Zs", "Zl", "Zp", "Cc", "Cf"}  # categories whose glyphs are legitimately empty
_PROBE_SIZE = 24

Face = tuple[str, int]  # (font file, face index); ("", 0) for PIL's default font
AnyFont = ImageFont.FreeTypeFont | ImageFont.ImageFont


@functools.lru_cache(maxsize=None)
def _chain() -> tuple[Face, ...]:
    """The fonts to try, in order: the shipped one, those of _SYSTEM_FONTS on this machine, PIL's."""
    found = tuple(face for face in _SYSTEM_FONTS if os.path.isfile(face[0]))
    return ((str(SHIPPED_FONT), 0), *found, _DEFAULT)


@functools.lru_cache(maxsize=256)
def _load(face: Face, size: int) -> AnyFont:
    """A font of `face` at `size` pixels (PIL's default font at that size for _DEFAULT)."""
    if face == _DEFAULT:
        try:
            return ImageFont.load_default(size)
        except TypeError:  # Pillow < 10.1: one bitmap size
            return ImageFont.load_default()
    return ImageFont.truetype(face[0], size, index=face[1])


def _mask(font: AnyFont, text: str) -> np.ndarray:
    """`text` rendered with `font`, cropped to its ink box, as a uint8 array."""
    left, top, right, bottom = (int(v) for v in font.getbbox(text))
    image = Image.new("L", (max(right - left, 1), max(bottom - top, 1)))
    ImageDraw.Draw(image).text((-left, -top), text, font=font, fill=255)
    return np.asarray(image)


@functools.lru_cache(maxsize=1 << 16)
def _has(face: Face, char: str) -> bool:
    """Whether `face` has a glyph for `char`: its rendering is neither the .notdef box nor blank."""
    try:
        font = _load(face, _PROBE_SIZE)
        mask = _mask(font, char)
    except (OSError, ValueError, UnicodeError):  # unreadable font; a bitmap font that cannot encode it
        return False
    if np.array_equal(mask, _notdef(face)):
        return False
    return bool(mask.any()) or unicodedata.category(char) in _INVISIBLE


@functools.lru_cache(maxsize=None)
def _notdef(face: Face) -> np.ndarray:
    """The missing-glyph rendering of `face` (of a code point no font maps)."""
    try:
        return _mask(_load(face, _PROBE_SIZE), _MISSING)
    except (OSError, ValueError, UnicodeError):
        return np.zeros((1, 1), np.uint8)


def font(size: int = 11) -> ImageFont.FreeTypeFont:
    """The shipped CJK font.

    Args:
        size: the font size in pixels (em height).

    Returns:
        a PIL FreeType font; use draw_text/text_width for text it may lack characters of.
    """
    return _load((str(SHIPPED_FONT), 0), size)


def font_for(char: str, size: int = 11) -> AnyFont:
    """The font draw_text uses for `char`: the first of the chain that has it, else the shipped one.

    Args:
        char: one character.
        size: the font size in pixels.

    Returns:
        a PIL font.
    """
    return _load(_face_for(char, None) or _chain()[0], size)


def _face_for(char: str, previous: Face | None) -> Face | None:
    """The chain's first face with `char` (spaces and marks stay in `previous` if it has them).

    A character no font has gets `previous` (or the shipped font): its missing-glyph box is drawn,
    except for invisible format characters and variation selectors (None: they are left out).
    """
    category = unicodedata.category(char)
    if previous is not None and (category in _INVISIBLE or category[0] == "M") and _has(previous, char):
        return previous
    face = next((face for face in _chain() if _has(face, char)), None)
    ignorable = category == "Cf" or 0xFE00 <= ord(char) <= 0xFE0F or 0xE0100 <= ord(char) <= 0xE01EF
    return face or (None if ignorable else previous or _chain()[0])


def _runs(text: str, size: int) -> list[tuple[str, AnyFont]]:
    """`text` split into runs of consecutive characters drawn with the same font."""
    runs: list[tuple[list[str], Face]] = []
    for char in text:
        if char in "\t\n\r":
            char = " "
        elif unicodedata.category(char) == "Cc":
            continue
        face = _face_for(char, runs[-1][1] if runs else None)
        if face is None:
            continue
        if runs and runs[-1][1] == face:
            runs[-1][0].append(char)
        else:
            runs.append(([char], face))
    return [("".join(chars), _load(face, size)) for chars, face in runs]


def text_width(text: str, size: int = 11) -> int:
    """The width draw_text takes for `text` (one line).

    Args:
        text: the string; tabs and newlines count as spaces.
        size: the font size in pixels.

    Returns:
        the advance width in pixels, rounded up.
    """
    return int(np.ceil(sum(f.getlength(run) for run, f in _runs(text, size))))


def draw_text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fill: object, size: int = 11,
              anchor: str = "la") -> None:
    """Draw one line of text, each character with the first font that has it, on a common baseline.

    Args:
        draw: where to draw.
        xy: the anchor point of the line.
        text: the string; tabs and newlines are drawn as spaces.
        fill: the colour, as ImageDraw.text takes it.
        size: the font size in pixels.
        anchor: two letters as in PIL: horizontal `l`eft / `m`iddle / `r`ight of the line, then
            vertical `a` (the shipped font's ascender line, the top), `m`iddle or `s` (baseline).
    """
    ascent, descent = font(size).getmetrics()
    width = text_width(text, size) if anchor[0] != "l" else 0
    left = xy[0] - {"l": 0, "m": width / 2, "r": width}[anchor[0]]
    top = xy[1] - {"a": 0, "m": (ascent + descent) / 2, "s": ascent}[anchor[1]]
    x, baseline = float(left), top + ascent
    for run, f in _runs(text, size):
        if isinstance(f, ImageFont.FreeTypeFont):
            draw.text((x, baseline), run, font=f, fill=fill, anchor="ls")
        else:  # a bitmap font: no anchors; put its top at the line's top
            draw.text((x, top), run, font=f, fill=fill)
        x += f.getlength(run)
