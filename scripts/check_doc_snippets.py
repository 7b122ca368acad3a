#!/usr/bin/env python3
"""Checks that code snippets in docs/*.md are identical to code that compiles.

A fenced block preceded by the line
    <!-- snippet: path/to/file.cpp -->          (the whole file)
    <!-- snippet: path/to/file.cpp#name -->     (the lines between
                                                 `// snippet: name` and
                                                 `// end snippet`, dedented)
must equal that source text. Exits 1 and lists every mismatch; prints how many
snippets were checked. Run from anywhere: paths are relative to the repo root.
"""
import pathlib
import re
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!--\s*snippet:\s*([^#\s]+)(?:#(\S+))?\s*-->")


def region(path, name):
    lines = (ROOT / path).read_text().split("\n")
    if name is None:
        return "\n".join(lines).rstrip("\n")
    start = re.compile(r"\s*// snippet: " + re.escape(name) + r"(\s|$)")
    out = None
    for line in lines:
        if out is None:
            if start.match(line):
                out = []
        elif line.strip() == "// end snippet":
            return textwrap.dedent("\n".join(out)).rstrip("\n")
        else:
            out.append(line)
    raise LookupError(f"no region '{name}' in {path}")


def main():
    problems, checked = [], 0
    for doc in sorted((ROOT / "docs").rglob("*.md")):
        lines = doc.read_text().split("\n")
        for i, line in enumerate(lines):
            m = MARKER.search(line)
            if not m:
                continue
            where = f"{doc.relative_to(ROOT)}:{i + 1}"
            if i + 1 >= len(lines) or not lines[i + 1].startswith("```"):
                problems.append(f"{where}: marker not followed by a fenced block")
                continue
            end = next((j for j in range(i + 2, len(lines)) if lines[j].startswith("```")), None)
            if end is None:
                problems.append(f"{where}: unterminated block")
                continue
            block = "\n".join(lines[i + 2:end]).rstrip("\n")
            try:
                expected = region(m.group(1), m.group(2))
            except (OSError, LookupError) as e:
                problems.append(f"{where}: {e}")
                continue
            checked += 1
            if block != expected:
                problems.append(f"{where}: differs from {m.group(1)}" + (f"#{m.group(2)}" if m.group(2) else ""))
    for p in problems:
        print(p)
    print(f"{checked} snippets checked, {len(problems)} problems")
    return 1 if problems or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
