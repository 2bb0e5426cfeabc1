"""The documentation a newcomer walks: README.md (the landing page) and docs/*.md.

Pure Python, no TensorFlow: every relative link and image points to a file that exists, every
`#anchor` matches a heading of its page (GitHub's anchor rule), README.md stays short and starts
with the two set-up commands (the second being the one `.ci/run` runs), and every page of docs/
is linked from README.md.
"""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 260

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target); the text may hold one level of brackets or a code span.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_TARGET = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", re.IGNORECASE)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def pages():
    """README.md and every docs page."""
    return [README, *sorted(DOCS.glob("*.md"))]


def prose_lines(text):
    """The lines outside fenced code blocks, as (line number, line)."""
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            yield number, line


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation but '-' and '_' removed, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w is Unicode letters, digits and '_'
    return text.replace(" ", "-")


def anchors(path):
    """Every anchor GitHub makes for the headings of a page (a repeated heading gets -1, -2...)."""
    seen = {}
    result = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(path):
    """Every link and image target of a page, as (line number, target), code left out."""
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        line = INLINE_CODE.sub("", line)
        for pattern in (LINK, HTML_TARGET):
            for match in pattern.finditer(line):
                yield number, match.group(1)
        reference = REFERENCE.match(line)
        if reference:
            yield number, reference.group(1)


def is_external(target):
    return re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) is not None


def broken_links(path):
    """Messages for the links of a page that point to a missing file or a missing heading."""
    problems = []
    for number, target in links(path):
        if is_external(target):
            continue
        file_part, _, anchor = target.partition("#")
        where = f"{path.name if path.parent.name != 'docs' else 'docs/' + path.name}:{number}"
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            problems.append(f"{where}: {target} points to a file that does not exist")
            continue
        if anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            problems.append(f"{where}: {target}: no heading of {destination.name} has the anchor #{anchor}")
    return problems


def test_slug_follows_githubs_rule():
    assert slug("Many devices, many machines, precision") == "many-devices-many-machines-precision"
    assert slug("Explain: why a model decided (`python -m zoo explain`)") == (
        "explain-why-a-model-decided-python--m-zoo-explain")
    assert slug("Text classifier with attention (`python -m train lstm_classifier`)") == (
        "text-classifier-with-attention-python--m-train-lstm_classifier")
    assert slug("Streaming and `--cache`") == "streaming-and---cache"
    assert slug("Results (measured here, 2 CPU cores)") == "results-measured-here-2-cpu-cores"


def test_the_check_finds_a_broken_link_and_a_broken_anchor(tmp_path):
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## Real heading\n", encoding="utf-8")
    page.write_text(
        "# Page\n\n## Same heading\n\n## Same heading\n\n"
        "[ok](other.md#real-heading) [ok](#same-heading-1) ![ok](other.md) [web](https://example.com)\n"
        "`[in code](missing.md)`\n```\n[in a block](missing.md)\n```\n"
        "[gone](missing.md) [bad anchor](other.md#no-such-heading) [bad here](#nowhere)\n"
        "![gone picture](../assets/none.png)\n",
        encoding="utf-8",
    )
    problems = broken_links(page)
    assert len(problems) == 4, problems
    assert [p.split(": ")[1] for p in problems] == [
        "missing.md points to a file that does not exist",
        "other.md#no-such-heading",
        "#nowhere",
        "../assets/none.png points to a file that does not exist",
    ]


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_links_images_and_anchors_resolve(page):
    assert not broken_links(page), "\n".join(broken_links(page))


def test_readme_is_a_landing_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move details to a page in docs/")


def test_readme_starts_with_the_two_set_up_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# "), "README.md starts with its title"
    first_section = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    fence = next((i for i, line in enumerate(lines) if FENCE.match(line)), None)
    assert fence is not None and fence < first_section, (
        "the set-up commands come before the first section of README.md")
    close = next(i for i in range(fence + 1, len(lines)) if FENCE.match(lines[i]))
    commands = [line for line in lines[fence + 1:close] if line.strip()]
    assert len(commands) == 2, commands
    install, test = commands
    for command in commands:
        assert command.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -e "), command
    assert install.endswith("python -m train gan_superres"), install
    assert test.endswith("python -m pytest -q"), test
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test in ci, "the README's test command is the one .ci/run runs"


def test_every_docs_page_is_linked_from_the_readme():
    linked = set()
    for _, target in links(README):
        file_part = target.partition("#")[0]
        if file_part and not is_external(target):
            linked.add((README.parent / file_part).resolve())
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"docs pages README.md does not link: {missing}"
