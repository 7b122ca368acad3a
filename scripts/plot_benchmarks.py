#!/usr/bin/env python3
"""Draws the benchmark plots of docs/benchmarks.md from the figures in its parts.

Reads the Markdown tables of docs/benchmarks.d/*.md (each benchmark's full run
writes its part), writes one gnuplot script and data file per plot it knows,
runs gnuplot (Debian: gnuplot-nox) to make docs/img/bench-*.png, writes the
part docs/benchmarks.d/plots.md that shows them, and regenerates
docs/benchmarks.md with scripts/merge_benchmarks.py.

A plot is known by the part it is in and the columns of its table; a table it
does not know (a part added later, a new column layout) is skipped and named
on the output, never an error. Stale bench-*.png files are removed.

    scripts/plot_benchmarks.py               # plots, plots.md, benchmarks.md
    scripts/plot_benchmarks.py --keep DIR    # also keep the gnuplot scripts and data in DIR
"""
import argparse
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))  # merge_benchmarks, check_doc_links
PARTS = ROOT / "docs" / "benchmarks.d"
IMG = ROOT / "docs" / "img"
PLOTS_PART = PARTS / "plots.md"

SLUICE, BASELINE, THIRD, FOURTH = "#1f5fa8", "#9a9a9a", "#e08a1e", "#3a9a5b"
TERMINAL = 'set terminal pngcairo size {w},{h} font "DejaVu Sans,10" noenhanced\n'
COMMON = """set border 3 lc rgb "#555555"
set tics nomirror textcolor rgb "#333333"
set grid noxtics ytics lc rgb "#dddddd" dt 1
set key top left Left reverse noautotitle box lc rgb "#cccccc"
set style fill solid 0.85 noborder
"""


# --- reading the parts -------------------------------------------------------


class Table:
    def __init__(self, part, section, header, rows):
        self.part, self.section, self.header, self.rows = part, section, header, rows

    def col(self, name):
        """Index of the column whose header is `name` (see norm), or None."""
        return next((i for i, h in enumerate(self.header) if h == norm(name)), None)

    def has(self, *names):
        return all(self.col(n) is not None for n in names)

    def cells(self, row, name):
        i = self.col(name)
        return row[i] if i is not None and i < len(row) else ""


def norm(text):
    """A header or label without Markdown emphasis or code marks, lowercase."""
    return re.sub(r"\s+", " ", text.replace("`", "").replace("**", "")).strip().lower()


def plain(text):
    """A cell as plain text (no code marks, no emphasis, no quotes)."""
    return re.sub(r"\s+", " ", text.replace("`", "").replace("**", "").replace('"', "'")).strip()


def number(cell):
    """The first number of a cell ("0.518 (0.37 + 0.15)", "4226x", "10,000", "619 606"), or None."""
    m = re.search(r"-?\d{1,3}(?:[, \u202f]\d{3})+(?!\d)(?:\.\d+)?|-?\d+(?:\.\d+)?", cell.replace("**", ""))
    return float(re.sub(r"[, \u202f]", "", m.group(0))) if m else None


def split_row(line):
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [c.strip().replace("\\|", "|") for c in cells]


def read_tables(path):
    tables, section, lines, fence = [], "", path.read_text(encoding="utf-8").split("\n"), False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            section = line.lstrip("#").strip()
        elif (not fence and line.lstrip().startswith("|") and i + 1 < len(lines)
              and re.fullmatch(r"\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*", lines[i + 1])):
            header = [norm(c) for c in split_row(line)]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(split_row(lines[i]))
                i += 1
            tables.append(Table(path.stem, section, header, rows))
            continue
        i += 1
    return tables


# --- gnuplot output ----------------------------------------------------------


def quoted(text):
    return '"' + text.replace('"', "'") + '"'


class Plot:
    """One PNG: its gnuplot script, data files and caption."""

    def __init__(self, name, title, caption, part, script, data, width=900, height=420):
        self.name, self.title, self.caption, self.part = name, title, caption, part
        self.script, self.data, self.width, self.height = script, data, width, height

    @property
    def png(self):
        return IMG / f"bench-{self.name}.png"


def hbar(name, title, caption, part, labels, values, xlabel, colors=None, fmt="%.1f", extra=""):
    """Horizontal bars, one per label, top to bottom in table order."""
    n = len(labels)
    if max(values) >= 1e5:  # millions read better than 2988370.0 and 1e+06
        values, fmt, extra = [v / 1e6 for v in values], "%.2f M", extra + 'set format x "%g M"\n'
    width = max(1000, int(6.6 * max(len(l) for l in labels)) + 560)  # room for the labels and ~500 px of bars
    colors = colors or [SLUICE] * n
    data = "".join(f"{quoted(l)} {v:g} 0x{c[1:]}\n" for l, v, c in zip(labels, values, colors))
    script = f"""set title {quoted(title)}
set xlabel {quoted(xlabel)}
set yrange [{n - 0.4}:-0.6]
set xrange [0:{(max(values) or 1) * 1.18:g}]
set grid xtics noytics
unset key
{extra}plot "{name}.dat" using ($2/2):0:(0):2:($0-0.34):($0+0.34):3:ytic(1) with boxxyerror lc rgb variable, \\
     "" using 2:0:(sprintf(" {fmt}", $2)) with labels left tc rgb "#333333"
"""
    return Plot(name, title, caption, part, script, {f"{name}.dat": data}, width, 90 + 30 * n)


def vbar(name, title, caption, part, labels, values, ylabel, colors, texts):
    n = len(labels)
    data = "".join(f"{quoted(l)} {v:g} 0x{c[1:]} {quoted(t)}\n" for l, v, c, t in zip(labels, values, colors, texts))
    script = f"""set title {quoted(title)}
set ylabel {quoted(ylabel)}
set xrange [-0.6:{n - 0.4}]
set yrange [0:{(max(values) or 1) * 1.2:g}]
unset key
plot "{name}.dat" using 0:2:(0.6):3:xtic(1) with boxes lc rgb variable, \\
     "" using 0:2:4 with labels offset 0,0.9 tc rgb "#333333"
"""
    return Plot(name, title, caption, part, script, {f"{name}.dat": data}, 760, 420)


def loglog(name, title, caption, part, xlabel, ylabel, xs, series):
    """Lines over xs on log-log axes; series: [(title, values, color, dashed)].
    Rows without a positive x, and values that are not positive, are left out."""
    keep = [i for i, x in enumerate(xs) if x is not None and x > 0]
    xs = [xs[i] for i in keep]
    series = [(t, [v[i] if v[i] is not None and v[i] > 0 else None for i in keep], c, d) for t, v, c, d in series]
    if not xs:
        return []
    data = "".join(f"{x:g} " + " ".join("NaN" if s[1][i] is None else f"{s[1][i]:g}" for s in series) + "\n"
                   for i, x in enumerate(xs))
    plots = []
    for k, (label, _, color, dashed) in enumerate(series):
        plots.append(f'"{name}.dat" using 1:{k + 2} with linespoints lw 2 pt 7 ps 1.1 lc rgb "{color}"'
                     f'{" dt 2" if dashed else ""} title {quoted(label)}')
    script = f"""set title {quoted(title)}
set xlabel {quoted(xlabel)}
set ylabel {quoted(ylabel)}
set logscale xy
set format xy "%.0s%c"
set xrange [{min(xs) / 2:g}:{max(xs) * 2:g}]
set grid xtics ytics mytics lc rgb "#dddddd"
set key below maxrows 3 height 2 nobox
set xlabel offset 0,0.3
plot {", ".join(plots)}
"""
    return [Plot(name, title, caption, part, script, {f"{name}.dat": data}, 900, 520)]


# --- the plots this script knows ---------------------------------------------


def fanout_plot(tables):
    """Deliveries per server-CPU-second, median per server and transport (server part)."""
    groups = {}
    for t in tables:
        if t.part == "server" and t.has("server", "transport", "deliveries / server-cpu-s"):
            for r in t.rows:
                v = number(t.cells(r, "deliveries / server-cpu-s"))
                if v is not None:
                    groups.setdefault((plain(t.cells(r, "server")), plain(t.cells(r, "transport"))), []).append(v)
    if not groups:
        return []
    keys = sorted(groups, key=lambda k: (k[0] != "sluice", k[1] != "WebSocket", k))
    medians = [statistics.median(groups[k]) for k in keys]
    base = next((m for k, m in zip(keys, medians) if k[0] != "sluice" and k[1] == "WebSocket"), None)
    # The ratio only where the setup is the baseline's (WebSocket; the SSE run has its own sizes).
    texts = [f"{m / 1e6:.2f} M" + (f" ({m / base:.1f}x)" if base and k[0] == "sluice" and k[1] == "WebSocket" else "")
             for k, m in zip(keys, medians)]
    caption = ("Fan-out: deliveries per second of the server thread's CPU time (user + system), the median of "
               "the rounds of one run; the ratio is against the plain websocketpp 0.8.2 broadcast server with the "
               "same 1,000 WebSocket subscribers (the SSE run has 200 subscribers and 5,000 events).")
    return [vbar("server-fanout", "Fan-out: deliveries per server-CPU-second (higher is better)", caption,
                 "server", [f"{s} {tr}" for s, tr in keys], [m / 1e6 for m in medians],
                 "million deliveries per server-CPU-second",
                 [SLUICE if s == "sluice" else BASELINE for s, _ in keys], texts)]


def idle_plot(tables):
    labels, values = [], []
    for t in tables:
        if t.part == "server" and t.has("server", "kib per connection"):
            for r in t.rows:
                v = number(t.cells(r, "kib per connection"))
                if v is not None:
                    labels.append(plain(t.cells(r, "server")))
                    values.append(v)
    if not values:
        return []
    base = next((v for l, v in zip(labels, values) if l != "sluice"), None)
    texts = [f"{v:.2f} KiB" + (f" ({v / base:.2f}x)" if base and l == "sluice" else "") for l, v in zip(labels, values)]
    caption = ("Idle connections: server RSS per subscribed WebSocket (10,000 connections, each on its own "
               "topic), lower is better.")
    return [vbar("server-idle", "Server memory per idle subscribed WebSocket (lower is better)", caption,
                 "server", labels, values, "KiB of server RSS per connection",
                 [SLUICE if l == "sluice" else BASELINE for l in labels], texts)]


def routing_plot(tables):
    wall = next((t for t in tables if t.part == "routing" and t.has("exact subs", "linear scan ns")), None)
    if wall is None:
        return []
    cpu = next((t for t in tables if t.part == "routing" and t.has("exact subs", "match cpu ns, 64 hot topics")), None)
    xs = [number(wall.cells(r, "exact subs")) for r in wall.rows]

    def column(table, name):
        if table is None or not table.has(name):
            return None
        by_x = {number(table.cells(r, "exact subs")): number(table.cells(r, name)) for r in table.rows}
        return [by_x.get(x) for x in xs]

    series = [(label, column(t, c), color, dashed) for label, t, c, color, dashed in [
        ("match, 64 hot topics (wall)", wall, "match ns, 64 hot topics", SLUICE, False),
        ("match, 4096 random topics (wall)", wall, "match ns, 4096 random topics", THIRD, False),
        ("match, 64 hot topics (thread CPU)", cpu, "match cpu ns, 64 hot topics", SLUICE, True),
        ("match, 4096 random topics (thread CPU)", cpu, "match cpu ns, 4096 random topics", THIRD, True),
        ("baseline: linear scan (wall)", wall, "linear scan ns", BASELINE, False)]]
    series = [s for s in series if s[1] is not None]
    caption = ("Routing: nanoseconds per `router::match` as the subscriptions grow tenfold (a topic matching 2 of "
               "them), against a linear scan calling `pattern_matches` on every subscription; log-log axes.")
    return loglog("routing-match", "router::match cost vs subscriptions (lower is better)", caption, "routing",
                  "exact subscriptions (plus 1% patterns)", "ns per match", xs, series)


def limiter_scaling_plot(tables):
    t = next((t for t in tables if t.part == "limiter" and t.has("limit", "exact ns/call", "naive ns/call")), None)
    if t is None:
        return []
    xs = [number(t.cells(r, "limit")) for r in t.rows]
    series = [("sluice exact sliding-log limiter", [number(t.cells(r, "exact ns/call")) for r in t.rows], SLUICE, False),
              ("baseline: vector of timestamps, erase(remove_if)", [number(t.cells(r, "naive ns/call")) for r in t.rows],
               BASELINE, False)]
    caption = ("Limiter: nanoseconds per `try_acquire` with the window full, as the limit grows from 10 to 100,000 "
               "permits, against the naive O(limit) filter; log-log axes.")
    return loglog("limiter-scaling", "Sliding-window limiter: cost vs limit (lower is better)", caption, "limiter",
                  "limit (permits per 1 s window)", "ns per try_acquire", xs, series)


# Horizontal bar charts: (part, label columns, value column, name, title, x label, caption,
# the rows drawn grey as baselines: a regular expression on the label).
HBARS = [
    ("resilience", ["operation"], "ns/op", "resilience", "Backoff and circuit breaker: ns per operation",
     "ns per operation (lower is better)",
     "Resilience primitives: nanoseconds per `backoff::next()` and per circuit-breaker decision, with the two "
     "baselines (a `std::minstd_rand` draw and `steady_clock::now()`) in grey.", r"^baseline"),
    ("limiter", ["limiter", "options", "traffic"], "ns/try_acquire", "limiter-one", "One limiter: ns per try_acquire",
     "ns per try_acquire (lower is better)",
     "Limiters: nanoseconds per `try_acquire` of one exact or approximate limiter.", r"^$"),
    ("limiter", ["keys", "traffic"], "ns/try_acquire", "limiter-keyed", "Keyed limiter: ns per try_acquire",
     "ns per try_acquire (lower is better)",
     "Keyed limiter (exact per key, 50 per 10 s, at most 10,000 keys): nanoseconds per `try_acquire`.", r"^$"),
    ("routing", ["operation"], "ns/op", "routing-filter", "Filters: ns per operation",
     "ns per operation (lower is better)",
     "Filters: one 3-condition `filter::matches` against parsing the event once, for scale (grey).", r"for scale"),
    ("history", ["operation", "baseline"], "ratio", "history", "History: cost relative to a baseline of the same run",
     "time / the baseline's time (lower is better)",
     "History: each operation's time divided by the baseline named after `vs`, measured in the same run.", r"^$"),
    ("outbox", ["case (per message)"], "cpu ns (avg)", "outbox", "Client outbox: CPU ns per message",
     "CPU ns per message, averaged over the rounds (lower is better)",
     "Client outbox: CPU nanoseconds per message through `outbox`, against a `std::deque` round trip (grey).",
     r"^baseline"),
    ("client", ["consumer"], "client cpu s per 1m events", "client", "C++ clients: CPU seconds per million events",
     "client CPU s per 1M events (lower is better)",
     "C++ clients: CPU per million events received by `ws_client` and `sse_client`, against a raw load-generator "
     "client on the same transport (grey), first run.", r"^raw"),
    ("cluster", ["setup"], "deliveries / cpu-s (hubs + redis)", "cluster", "Cluster: deliveries per CPU-second",
     "deliveries per CPU-second of the hubs and redis-server (higher is better)",
     "Cluster fan-out: deliveries per CPU-second of the hubs plus redis-server, through Redis on the same hub "
     "and across two hubs, against the in-memory backplane (grey).", r"^memory$"),
]


def hbar_plots(tables):
    plots = []
    for part, label_cols, value_col, name, title, xlabel, caption, baseline in HBARS:
        t = next((t for t in tables if t.part == part and t.has(*label_cols, value_col)), None)
        if t is None:
            continue
        labels, values, colors = [], [], []
        for r in t.rows:
            v = number(t.cells(r, value_col))
            if v is None:
                continue
            parts = [plain(t.cells(r, c)) for c in label_cols]
            label = parts[0] + (f" vs {parts[1]}" if name == "history" else "".join(f", {p}" for p in parts[1:]))
            labels.append(label)
            values.append(v)
            colors.append(BASELINE if re.search(baseline, label, re.IGNORECASE) else SLUICE)
        if values:
            ratio = name == "history"  # a dashed line at 1: the baseline's own cost
            plots.append(hbar(name, title, caption, part, labels, values, xlabel, colors, "%.2f" if ratio else "%.3g" if max(values) < 10 else "%.1f",
                              f'set arrow from 1, graph 0 to 1, graph 1 nohead dt 2 lc rgb "{BASELINE}"\n' if ratio else ""))
    return plots


KNOWN = [fanout_plot, idle_plot, routing_plot, limiter_scaling_plot, hbar_plots]


def used_columns():
    """The header signatures the plots above read, to name the skipped tables."""
    sigs = [("server", {"server", "transport", "deliveries / server-cpu-s"}), ("server", {"server", "kib per connection"}),
            ("routing", {"exact subs"}), ("limiter", {"limit", "exact ns/call", "naive ns/call"})]
    sigs += [(p, {norm(c) for c in labels + [value]}) for p, labels, value, *_ in HBARS]
    return sigs


# --- the part and main -------------------------------------------------------


def section_anchor(part):
    """GitHub anchor of a part's first `## ` heading (its section in benchmarks.md)."""
    from check_doc_links import slug  # a sibling script: the anchors it checks
    for line in (PARTS / f"{part}.md").read_text(encoding="utf-8").split("\n"):
        if line.startswith("## "):
            return slug(line[3:].strip())
    return ""


def write_part(plots):
    out = ["<!-- Part of docs/benchmarks.md, written by scripts/plot_benchmarks.py from the other parts: "
           "do not edit, re-run the script. -->",
           "## At a glance",
           "",
           "Plots of the tables below, drawn by `scripts/plot_benchmarks.py` (gnuplot) from the figures in",
           "`docs/benchmarks.d/`; each caption links the section with the command, the machine and the",
           "method. Same machine caveats: judge by the ratios to the baselines of the same run.",
           ""]
    for p in plots:
        out += [f"![{p.title}](img/{p.png.name})", "",
                f"{p.caption} Figures, command and method: [{p.part} section](#{section_anchor(p.part)}).", ""]
    PLOTS_PART.write_text("\n".join(out).rstrip("\n") + "\n", encoding="utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", metavar="DIR", help="keep the gnuplot scripts and data files in DIR")
    args = ap.parse_args()
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        print("plot_benchmarks: gnuplot not found (Debian: apt-get install gnuplot-nox)", file=sys.stderr)
        return 1

    tables = [t for p in sorted(PARTS.glob("*.md")) if p != PLOTS_PART for t in read_tables(p)]
    plots = [p for known in KNOWN for p in known(tables)]
    sigs = used_columns()
    for t in tables:
        if not any(t.part == part and cols <= set(t.header) for part, cols in sigs):
            print(f"skipped: {t.part}.md, {t.section or '(no heading)'}: | {' | '.join(t.header)} |")

    work = pathlib.Path(args.keep) if args.keep else pathlib.Path(tempfile.mkdtemp(prefix="sluice-plots-"))
    work.mkdir(parents=True, exist_ok=True)
    IMG.mkdir(parents=True, exist_ok=True)
    for old in IMG.glob("bench-*.png"):
        old.unlink()
    try:
        for p in plots:
            for name, text in p.data.items():
                (work / name).write_text(text, encoding="utf-8")
            script = (TERMINAL.format(w=p.width, h=p.height) + f"set output {quoted(str(p.png))}\n" + COMMON
                      + p.script)
            (work / f"{p.name}.gp").write_text(script, encoding="utf-8")
            subprocess.run([gnuplot, f"{p.name}.gp"], cwd=work, check=True)
            print(f"{p.png.relative_to(ROOT)}: {p.title}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    write_part(plots)
    import merge_benchmarks  # a sibling script
    merge_benchmarks.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
