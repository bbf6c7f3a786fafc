"""The design document is cited by stable heading anchors, and no history is written into the tree.

Citations have the form ``docs/design.md#<slug>``, where the slug is GitHub's anchor of a heading of
docs/design.md: lowercase, every character other than a letter, a digit, ``_``, ``-`` or a space
dropped, each space turned into ``-`` (a repeated heading would get ``-1``; headings are unique
instead). Section numbers are not cited: a reorder of the document must break nothing.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs" / "design.md"
# Where the design document may be cited.
CITING = ["wsrbench", "tests", "scripts", "benchmarks", "examples", "README.md", "CONTRIBUTING.md",
          ".ci", "docs"]
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".sh", ".cfg", ".yaml", ".yml", ""}


def github_slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading's text."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(markdown: str) -> list[tuple[int, str]]:
    """(level, text) of every ATX heading outside fenced code blocks."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = re.match(r"(#{1,6}) +(.+?) *#*$", line)
        if m and not fenced:
            out.append((len(m.group(1)), m.group(2)))
    return out


def text_files(names=CITING) -> list[Path]:
    files = []
    for name in names:
        p = ROOT / name
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files += [f for f in sorted(p.rglob("*")) if f.is_file() and f.suffix in TEXT_SUFFIXES
                      and "__pycache__" not in f.parts and ".egg-info" not in str(f)]
    return files


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ""


def design_slugs() -> set[str]:
    return {github_slug(h) for _, h in headings(DESIGN.read_text(encoding="utf-8"))}


def test_slug_rules():
    assert github_slug("The operator") == "the-operator"
    assert github_slug("L1: soft-threshold of the prox") == "l1-soft-threshold-of-the-prox"
    assert github_slug("hull_bridges memory traffic") == "hull_bridges-memory-traffic"
    assert github_slug("The cascade's dynamic range") == "the-cascades-dynamic-range"
    assert github_slug("imminent_collisions in O(log d) depth") == "imminent_collisions-in-olog-d-depth"


def test_design_headings_are_unique_and_unnumbered():
    hs = headings(DESIGN.read_text(encoding="utf-8"))
    assert len(hs) > 20
    slugs = [github_slug(h) for _, h in hs]
    repeated = sorted({s for s in slugs if slugs.count(s) > 1})
    assert not repeated, f"headings of docs/design.md with the same anchor: {repeated}"
    numbered = [h for _, h in hs if re.match(r"\d+(\.\d+)*\.? ", h)]
    assert not numbered, f"numbered headings (cite anchors, not numbers): {numbered}"


def test_every_cited_anchor_exists():
    slugs = design_slugs()
    cited = re.compile(r"docs/design\.md#([\w-]+)")
    missing = []
    for f in text_files():
        for n, line in enumerate(read(f).splitlines(), 1):
            missing += [f"{f.relative_to(ROOT)}:{n}: #{a}" for a in cited.findall(line)
                        if a not in slugs]
    # In-document links of the design document itself.
    for n, line in enumerate(DESIGN.read_text(encoding="utf-8").splitlines(), 1):
        missing += [f"docs/design.md:{n}: #{a}" for a in re.findall(r"\]\(#([^)]+)\)", line)
                    if a not in slugs]
    assert not missing, "anchors cited but not headings of docs/design.md:\n" + "\n".join(missing)


# "docs/design.md section 5.3", "design 14.1", "DESIGN.md 2.3", "design.md, sections 2.3 and 3.5",
# "design §3" (possibly broken over a comment line): a citation by number.
NUMBERED = re.compile(r"design(?:\.md)?[ \t]*(?:\n[ \t]*(?:#[ \t]*)?)?,?[ \t]*(?:sections?|§)?[ \t]*"
                      r"\d+(?:\.\d+)?\b(?![\d.]*[x%])", re.IGNORECASE)
# Inside the design document: "(section 13.6)", "(13.6)", "of 9.4", "13.6's".
NUMBERED_INSIDE = re.compile(r"\bsections? \d|\((?:1[0-5]|[1-9])\.\d{1,2}[,;)]|"
                             r"\b(?:of|in) (?:1[0-5]|[1-9])\.\d{1,2}[ ,;)](?!\w)|"
                             r"\b(?:1[0-5]|[1-9])\.\d{1,2}'s\b")


def test_no_numbered_design_citation():
    found = []
    for f in text_files():
        if f == Path(__file__).resolve():
            continue
        text = read(f)
        for m in NUMBERED.finditer(text):
            n = text.count("\n", 0, m.start()) + 1
            found.append(f"{f.relative_to(ROOT)}:{n}: {m.group(0)!r}")
    text = DESIGN.read_text(encoding="utf-8")
    for m in NUMBERED_INSIDE.finditer(text):
        n = text.count("\n", 0, m.start()) + 1
        found.append(f"docs/design.md:{n}: {m.group(0)!r}")
    assert not found, "design cited by section number (use docs/design.md#<slug>):\n" + \
        "\n".join(found)


# Project history belongs in CHANGELOG.md, not in the code or the documents.
HISTORY = re.compile(r"\bissues?[ \t]*#?\d+|\brounds?[ \t]*#?(?:[2-9]|\d\d+)\b|\bdev[ -]?VM\b|"
                     r"\bdev machine\b|\bthis round\b|\bthe last round\b|\bprevious round of\b|"
                     r"\bhelpers?\b|\bsession\b", re.IGNORECASE)
HISTORY_SCOPE = ["wsrbench", "docs", "README.md"]


@pytest.mark.parametrize("sample, flagged", [
    ("after issue 9 the names moved", True), ("(issue #12)", True), ("round 2", True),
    ("measured on the dev VM", True), ("the helpers here", True), ("this round's counters", True),
    ("round 1 merges the singletons", False), ("a row's last round", False),
    ("the issue is the sort", False),
])
def test_history_pattern(sample, flagged):
    assert bool(HISTORY.search(sample)) is flagged


def test_no_history_wording():
    figures = ROOT / "docs" / "figures"
    found = []
    for f in text_files(HISTORY_SCOPE):
        if figures in f.parents:
            continue
        for n, line in enumerate(read(f).splitlines(), 1):
            found += [f"{f.relative_to(ROOT)}:{n}: {m.group(0)!r}" for m in HISTORY.finditer(line)]
    assert not found, "history wording (it belongs in CHANGELOG.md):\n" + "\n".join(found)


def test_layout_lists_every_module():
    text = DESIGN.read_text(encoding="utf-8")
    start = text.index("\n## Layout\n")
    end = text.find("\n## ", start + 1)
    layout = text[start:end if end > 0 else len(text)]
    outside = ("tests/", "scripts/", "benchmarks/", "examples/")
    listed = {p.removeprefix("wsrbench/") for p in re.findall(r"`([\w/]+\.py)`", layout)
              if not p.startswith(outside)}
    package = ROOT / "wsrbench"
    modules = {str(p.relative_to(package)) for p in package.rglob("*.py")
               if "__pycache__" not in p.parts}
    assert not modules - listed, f"modules missing from docs/design.md#layout: {sorted(modules - listed)}"
    assert not listed - modules, f"docs/design.md#layout lists modules that do not exist: " \
                                 f"{sorted(listed - modules)}"


# A figures file's header (the text above its first table) names these; docs/design.md#figures-with-provenance.
PROVENANCE_FIELDS = {
    "date": re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b"),
    "commit": re.compile(r"\bcommits?\b[:\s]+[0-9a-f]{7,}", re.I),
    "machine": re.compile(r"\bmachine\b|\b\d+ (cores|CPUs)\b", re.I),
    "load": re.compile(r"\bload\b", re.I),
}
FIGURE_CITATION = re.compile(r"docs/figures/[\w./*-]*[\w*]")


def missing_provenance(text: str) -> list[str]:
    """The provenance fields absent from a figures file's header."""
    head = text.split("\n|", 1)[0]
    return [name for name, pattern in PROVENANCE_FIELDS.items() if not pattern.search(head)]


@pytest.mark.parametrize("head, missing", [
    ("# T\n\n- date: 2026-12-07 01:00 UTC\n- commit: 909523b4e5b0\n- machine: AMD EPYC, 2 cores\n"
     "- load average (1 min) during the run: mean 1.00, max 1.20\n\n| a |\n", []),
    ("# T\n\nmeasured 2026-12-07, commit 909523b, AMD EPYC, 2 CPUs, load average 3\n\n| a |\n", []),
    ("# T\n\n| date | commit | machine | load |\n| 2026-12-07 | 909523b | x | 1 |\n",
     ["date", "commit", "machine", "load"]),
    ("# T\n\n- date: 2026-12-07\n- machine: AMD EPYC, 2 cores\n", ["commit", "load"]),
])
def test_provenance_check(head, missing):
    assert missing_provenance(head) == missing


def test_cited_figures_exist_with_provenance():
    cited = sorted({m.group(0).rstrip(".") for doc in (ROOT / "README.md", DESIGN)
                    for m in FIGURE_CITATION.finditer(doc.read_text(encoding="utf-8"))})
    absent = [c for c in cited if not list(ROOT.glob(c))]
    assert not absent, f"cited figures files that do not exist: {absent}"
    cited = sorted({str(p.relative_to(ROOT)) for c in cited for p in ROOT.glob(c)})
    bad = {c: missing_provenance((ROOT / c).read_text(encoding="utf-8"))
           for c in cited if c.endswith(".md")}
    bad = {c: m for c, m in bad.items() if m}
    assert not bad, f"figures files without their provenance (scripts/figures.sh writes it): {bad}"
    assert any(c.endswith(".md") for c in cited)
