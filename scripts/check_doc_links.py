#!/usr/bin/env python3
"""Checks that every relative link in the Markdown docs resolves.

Reads README.md, DEVELOPERS.md, CHANGELOG.md, examples/**/*.md and docs/*.md.
For every inline link or image `[text](target)` and every reference definition
`[label]: target` outside code (fenced blocks and `inline code`):
- an absolute URL (`https:`, `mailto:`...) is not checked;
- `path` must name an existing file or directory inside the repository;
- `path#anchor` and `#anchor` must name a heading of that Markdown file, with
  GitHub's anchors (lowercase; punctuation other than `-` and `_` dropped;
  spaces become `-`; repeats get `-1`, `-2`...) or an `<a id/name="...">`.
Exits 1 and lists every broken link; prints how many links were checked.
Run from anywhere: paths are relative to the repository root.
"""
import pathlib
import re
import sys
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = ["README.md", "DEVELOPERS.md", "CHANGELOG.md", "examples/**/*.md", "docs/*.md"]

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target); target optionally <...>, optional "title".
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:[^>]*\s)?(?:id|name)\s*=\s*\"([^\"]+)\"", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def prose_lines(text):
    """(line number, line) of the lines outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)
                continue
            yield number, line
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip()[len(m.group(1)):]:
            fence = None


def slug(heading):
    """GitHub's anchor of a heading's Markdown text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps Unicode letters, digits and _
    return text.replace(" ", "-")


_anchor_cache = {}


def anchors(path):
    if path not in _anchor_cache:
        found, seen = set(), {}
        for _, line in prose_lines(path.read_text(encoding="utf-8")):
            found.update(HTML_ANCHOR.findall(line))
            m = HEADING.match(line)
            if not m:
                continue
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
        _anchor_cache[path] = found
    return _anchor_cache[path]


def links(path):
    """(line number, target) of every link in the file's prose."""
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        m = REFERENCE_DEF.match(line)
        if m:
            yield number, m.group(1)
            continue
        for m in INLINE_LINK.finditer(INLINE_CODE.sub("", line)):
            yield number, m.group(1)


def check(doc, target):
    """None if `target` (a link in `doc`) resolves, else what is wrong."""
    target = target[1:-1] if target.startswith("<") else target
    if SCHEME.match(target) or target.startswith("//"):
        return None  # an absolute URL: not ours to check
    raw_path, _, fragment = target.partition("#")
    raw_path = urllib.parse.unquote(raw_path.split("?")[0])
    dest = (doc.parent / raw_path).resolve() if raw_path else doc
    if raw_path.startswith("/"):
        return "absolute path (GitHub resolves it against the site, not the repo)"
    if ROOT != dest and ROOT not in dest.parents:
        return "points outside the repository"
    if not dest.exists():
        return "no such file or directory"
    if fragment:
        if dest.is_dir() or dest.suffix.lower() != ".md":
            return f"#{fragment} on a file that is not Markdown"
        if urllib.parse.unquote(fragment) not in anchors(dest):
            return f"no heading with anchor #{fragment} in {dest.relative_to(ROOT)}"
    return None


def main():
    docs = sorted({p for pattern in SOURCES for p in ROOT.glob(pattern) if p.is_file()})
    problems, checked = [], 0
    for doc in docs:
        for number, target in links(doc):
            checked += 1
            why = check(doc, target)
            if why:
                problems.append(f"{doc.relative_to(ROOT)}:{number}: {target}: {why}")
    for p in problems:
        print(p)
    print(f"{checked} links checked in {len(docs)} files, {len(problems)} problems")
    return 1 if problems or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
