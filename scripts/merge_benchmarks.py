#!/usr/bin/env python3
"""Writes docs/benchmarks.md from a fixed introduction and the per-component
parts in docs/benchmarks.d/ (each benchmark's full run writes or updates its
part, with the command that produced it)."""
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
ORDER = ["plots", "server", "resilience", "limiter", "routing", "history", "outbox"]
INTRO = """# Benchmarks

Every figure here comes from a program in `benchmarks/` (each section gives the
exact command). CI builds all of them and runs each with `--quick` as a smoke
test; the figures are from full runs on the project's 2-core machine, which is
shared and noisy, so every section compares against a baseline measured in the
same run, and the targets are judged by those ratios, never by timed unit tests.
Regenerate this page with `scripts/merge_benchmarks.py` after updating a part in
`docs/benchmarks.d/`; `scripts/plot_benchmarks.py` redraws the plots from the parts
(and runs this script).

"""


def main():
    parts = {p.stem: p for p in (ROOT / "docs" / "benchmarks.d").glob("*.md")}
    names = [n for n in ORDER if n in parts] + sorted(n for n in parts if n not in ORDER)
    body = INTRO + "\n\n".join(parts[n].read_text().strip() for n in names) + "\n"
    (ROOT / "docs" / "benchmarks.md").write_text(body)
    print(f"docs/benchmarks.md: {len(names)} sections")


if __name__ == "__main__":
    main()
