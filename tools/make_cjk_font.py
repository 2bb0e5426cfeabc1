"""Make zoo/assets/fonts/NotoSansCJKsc-Regular-subset.otf, the CJK font that zoo.fonts ships.

    apt-get install fonts-noto-cjk && pip install fonttools
    python tools/make_cjk_font.py [--ttf] [--source /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc]

Subsets Noto Sans CJK SC Regular (face 2 of Debian's NotoSansCJK-Regular.ttc, SIL OFL 1.1) with
fontTools' pyftsubset to: Basic Latin, Latin-1 Supplement, General Punctuation, CJK Symbols and
Punctuation, Hiragana, Katakana, Halfwidth/Fullwidth Forms, GB2312's symbol rows 1-9 (pinyin,
Greek, Cyrillic, circled numbers, arrows, bopomofo, box drawing), its 6,763 Han characters, the
5,401 of Big5 level 1 and the 2,350 Hangul syllables of KS X 1001. No hinting, no layout
tables (GSUB/GPOS/GDEF/BASE), no vertical metrics: only what PIL needs to draw horizontal text.
--ttf also writes a TrueType-outline (quadratic) version next to it, to compare sizes (CFF wins
for CJK: 2.4 MB vs 3.2 MB). Also writes OFL.txt beside the font (its notices + Debian's OFL text);
prints sizes and glyph counts. fonttools is a build-time tool only.
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile

SOURCE = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
COPYRIGHT = "/usr/share/doc/fonts-noto-cjk/copyright"  # Debian's: holds the OFL 1.1 text
FACE = 2  # 0 JP, 1 KR, 2 SC, 3 TC, 4 HK in Debian's (upstream's) .ttc
OUT = os.path.join(os.path.dirname(__file__), "..", "zoo", "assets", "fonts",
                   "NotoSansCJKsc-Regular-subset.otf")
BLOCKS = {  # name: (first, last) code point, inclusive
    "Basic Latin": (0x20, 0x7E), "Latin-1 Supplement": (0xA0, 0xFF),
    "General Punctuation": (0x2000, 0x206F), "CJK Symbols and Punctuation": (0x3000, 0x303F),
    "Hiragana": (0x3040, 0x309F), "Katakana": (0x30A0, 0x30FF),
    "Halfwidth and Fullwidth Forms": (0xFF00, 0xFFEF),
}


def _decode_all(codec: str, leads: range, trails: list[int]) -> set[str]:
    """The characters a double-byte codec decodes from every lead x trail byte pair (undefined skipped)."""
    chars = set()
    for lead in leads:
        for trail in trails:
            try:
                chars.add(bytes([lead, trail]).decode(codec))
            except UnicodeDecodeError:
                pass
    return chars


def charsets() -> dict[str, set[str]]:
    """The character sets to keep, by name."""
    gb_trails = list(range(0xA1, 0xFF))
    big5 = _decode_all("big5", range(0xA4, 0xC7), list(range(0x40, 0x7F)) + gb_trails)
    big5 = {c for c in big5 if 0xA440 <= int.from_bytes(c.encode("big5"), "big") <= 0xC67E}
    sets = {name: {chr(u) for u in range(a, b + 1)} for name, (a, b) in BLOCKS.items()}
    sets["GB2312 symbols"] = _decode_all("gb2312", range(0xA1, 0xAA), gb_trails)  # rows 1-9
    sets["GB2312 Hanzi"] = _decode_all("gb2312", range(0xB0, 0xF8), gb_trails)
    sets["Big5 level 1"] = big5
    sets["KS X 1001 Hangul"] = _decode_all("euc_kr", range(0xB0, 0xC9), gb_trails)
    return sets


def write_license(font_path: str, out: str, copyright_file: str = COPYRIGHT) -> None:
    """Write OFL.txt: the font's copyright and trademark notices, then the OFL 1.1 text from Debian's file."""
    from fontTools.ttLib import TTFont

    name = TTFont(font_path)["name"]
    lines, inside, debian = [], False, ""
    for line in open(copyright_file, encoding="utf-8"):  # the stand-alone "License: SIL-1.1" paragraph
        if line.startswith("Copyright:") and not debian:  # of "Files: *", the font files
            debian = line.split(":", 1)[1].strip()
        if line.rstrip() == "License: SIL-1.1" and not lines:
            inside = True
        elif inside:
            if not line.startswith(" "):  # end of a paragraph (the first "License: SIL-1.1" is a field)
                if lines:
                    break
                inside = False
                continue
            lines.append("" if line.strip() == "." else line[1:].rstrip())
    if not lines:
        raise SystemExit(f"no 'License: SIL-1.1' paragraph in {copyright_file}")
    head = [f"{name.getDebugName(4)} (subset), from Debian's fonts-noto-cjk: {name.getDebugName(5)}",
            f"Copyright: {name.getDebugName(0)} (the font's notice)",
            f"Copyright: {debian} (Debian's copyright file, for the upstream files)",
            name.getDebugName(7), "",
            "This Font Software is licensed under the SIL Open Font License, Version 1.1.",
            "This license is copied below, and is also available with a FAQ at: https://openfontlicense.org", ""]
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(head + lines) + "\n")


def to_truetype(otf: str, ttf: str) -> None:
    """Convert a CFF-outline font to TrueType (quadratic) outlines, like fontTools' otf2ttf snippet."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTFont, newTable

    font = TTFont(otf)
    order, glyph_set = font.getGlyphOrder(), font.getGlyphSet()
    glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, max_err=1.0, reverse_direction=True))
        glyphs[name] = pen.glyph()
    font["loca"], font["glyf"] = newTable("loca"), newTable("glyf")
    font["glyf"].glyphOrder, font["glyf"].glyphs = order, glyphs
    del font["CFF "]
    font["maxp"] = newTable("maxp")
    font["maxp"].tableVersion = 0x00010000
    for attr in ("maxZones", "maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
                 "maxStackElements", "maxSizeOfInstructions", "maxComponentElements"):
        setattr(font["maxp"], attr, 0)
    font["maxp"].maxZones = 1
    font["head"].glyphDataFormat = 0
    font["post"].formatType = 3.0  # no glyph names
    font.sfntVersion = "\x00\x01\x00\x00"
    font.save(ttf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=SOURCE)
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--ttf", action="store_true", help="also write and measure a TrueType version")
    args = parser.parse_args()
    from fontTools.ttLib import TTFont

    sets = charsets()
    keep = set().union(*sets.values())
    with tempfile.TemporaryDirectory() as tmp:
        unicodes = os.path.join(tmp, "unicodes.txt")
        with open(unicodes, "w") as f:
            f.write("\n".join(f"U+{ord(c):04X}" for c in sorted(keep)) + "\n")
        cmd = ["pyftsubset", args.source, f"--font-number={FACE}", f"--unicodes-file={unicodes}",
               f"--output-file={os.path.abspath(args.out)}", "--no-hinting", "--layout-features=",
               "--drop-tables+=GSUB,GPOS,GDEF,BASE,VORG,vhea,vmtx,DSIG", "--name-IDs=0,1,2,3,4,5,6,7,13,14",
               "--notdef-outline", "--no-glyph-names", "--no-recalc-timestamp"]
        print("$", shlex.join(cmd).replace(unicodes, "UNICODES.txt"), flush=True)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        subprocess.run([sys.executable, "-m", "fontTools.subset", *cmd[1:]], check=True)
    write_license(args.out, os.path.join(os.path.dirname(args.out), "OFL.txt"))
    outs = [args.out]
    if args.ttf:
        outs.append(os.path.splitext(args.out)[0] + ".ttf")
        to_truetype(args.out, outs[-1])
    cmap = TTFont(args.out)["cmap"].getBestCmap()
    for name, chars in sets.items():
        print(f"{name}: {sum(ord(c) in cmap for c in chars)} of {len(chars)} characters")
    print(f"{len(cmap)} code points mapped")
    for path in outs:
        print(f"{os.path.relpath(path)}: {os.path.getsize(path):,} bytes, "
              f"{TTFont(path)['maxp'].numGlyphs} glyphs")


if __name__ == "__main__":
    main()
