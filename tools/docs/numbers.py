"""Writes the guide's tables of the project's own runs from a store that holds them, so
that the numbers the guide quotes are a run's, with the date, machine and commit they
were made on (docs/src/generated/, included by the guide's pages).

    cargo run --release -- run pipelines/quickstart.ron
    python3 tools/docs/numbers.py quickstart [--cache cache] [--pipe target/release/pipe]
    python3 tools/docs/numbers.py methods    (after `pipe run pipelines/methods.ron`)

Reads the records through `pipe metrics … --mean-over seed --json`; a stage not yet run
is an error naming it.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "src" / "generated"

# name: (pipeline, stages, [(column, metric, scale, digits)])
TABLES = {
    "quickstart": (
        "pipelines/quickstart.ron",
        ["score", "score_real"],
        [("FID", "fid", 1, 1), ("IS", "is_mean", 1, 2), ("accuracy", "accuracy", 100, 1)],
    ),
    "methods": (
        "pipelines/methods.ron",
        ["score"],
        [("FID", "fid", 1, 1), ("iFID", "ifid", 1, 1), ("IS", "is_mean", 1, 2),
         ("accuracy", "accuracy", 100, 1)],
    ),
}


def machine():
    model = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def commit():
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    # The guide's own edits do not change what a run gives.
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":!docs", ":!README.md"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.strip()
    return head + (" (with uncommitted changes)" if dirty else "")


def cell(metric, scale, digits, unit):
    if metric is None:
        return "–"
    value = f"{metric['mean'] * scale:.{digits}f}{unit}"
    if metric.get("runs", 1) > 1:
        value += f" ± {metric['sd'] * scale:.{digits}f}{unit}"
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table", choices=sorted(TABLES))
    parser.add_argument("--cache", default=os.environ.get("PIPE_CACHE", "cache"))
    parser.add_argument("--pipe", default=str(ROOT / "target" / "release" / "pipe"))
    args = parser.parse_args()
    pipeline, stages, columns = TABLES[args.table]
    result = subprocess.run([args.pipe, "metrics", pipeline, *stages, "--mean-over", "seed",
                             "--json", "--cache", args.cache], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"pipe metrics failed (run `pipe run {pipeline}` first):\n{result.stderr}")
    rows = json.loads(result.stdout)["rows"]
    if not rows:
        sys.exit(f"no records of {', '.join(stages)} in {args.cache}: run `pipe run {pipeline}` first")
    runs = max(m.get("runs", 1) for r in rows for m in r["metrics"].values())
    lines = [
        f"*Made {datetime.date.today()} at commit {commit()} on {machine()}, by `python3 "
        f"tools/docs/numbers.py {args.table}` from the records of `pipe run {pipeline}`; mean ± sd "
        f"over {runs} seeds where there are several.*",
        "",
        "| " + " | ".join(["method"] + [c[0] for c in columns]) + " |",
        "|" + "---|" * (len(columns) + 1),
    ]
    for row in rows:
        name = " ".join(str(v) for v in row["vars"].values()) or row["group"]
        cells = [cell(row["metrics"].get(metric), scale, digits, "%" if scale == 100 else "")
                 for _, metric, scale, digits in columns]
        lines.append("| " + " | ".join([name] + cells) + " |")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{args.table}.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


main()
