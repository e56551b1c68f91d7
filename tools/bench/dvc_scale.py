#!/usr/bin/env python3
"""DVC on the pipelines of `cargo bench --bench engine`'s sweep-scale part, for the
figures beside ours in docs/src/benchmarks.md.

The same shapes: a chain of N stages, each reading the one before
(`cat up/o > o; echo i >> o`), and a sweep of N stages from one `foreach` over four
variables reading one root stage, with a last stage reading them all. Each command is a
whole `dvc` process, as each of ours is a whole `pipe` process. Every step has a
deadline (`--timeout`, default 600 s): a step past it is reported as such ("as far as
it gets"). A first run past it is finished by the shell and `dvc commit -f`, so that
the reruns can still be timed.

    python3 tools/bench/dvc_scale.py --sizes 1000 10000 [--run-up-to 1000]

Needs `dvc` on PATH (`pip install dvc`) and git. Prints one line per step and a
Markdown table at the end.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time


def chain_yaml(n):
    commands = ["mkdir -p s0 && echo 0 > s0/o"]
    lines = ["stages:"]
    lines += ["  s0:", f"    cmd: {commands[0]}", "    outs: [s0]"]
    for i in range(1, n):
        commands.append(f"mkdir -p s{i} && cat s{i - 1}/o > s{i}/o && echo {i} >> s{i}/o")
        lines += [
            f"  s{i}:",
            f"    cmd: {commands[-1]}",
            f"    deps: [s{i - 1}]",
            f"    outs: [s{i}]",
        ]
    return "\n".join(lines) + "\n", "s1", commands


def sweep_yaml(n):
    small, last = (10, n // 1000) if n >= 1000 else (1, n)
    items = [
        f"t{a}_{b}_{c}_{d}"
        for a in range(small)
        for b in range(small)
        for c in range(small)
        for d in range(last)
    ]
    lines = ["stages:", "  root:", "    cmd: mkdir -p root && touch root/o", "    outs: [root]"]
    lines += ["  t:", "    foreach:"] + [f"      - {i}" for i in items]
    lines += [
        "    do:",
        "      cmd: mkdir -p ${item} && echo ${item} > ${item}/o",
        "      deps: [root]",
        "      outs: ['${item}']",
    ]
    lines += [
        "  report:",
        "    cmd: ls -d t* | wc -l > n",
        "    deps: [" + ", ".join(items) + "]",
        "    outs: [n]",
    ]
    commands = ["mkdir -p root && touch root/o"]
    commands += [f"mkdir -p {i} && echo {i} > {i}/o" for i in items]
    commands.append("ls -d t* | wc -l > n")
    return "\n".join(lines) + "\n", "root", commands


def timed(args, cwd, timeout):
    start = time.monotonic()
    try:
        done = subprocess.run(
            args, cwd=cwd, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
    return time.monotonic() - start


def fill(dvc, cwd, commands, timeout):
    """Brings a pipeline whose first `dvc repro` ran out of time to the state a finished
    one leaves: every stage's command run by the shell, then `dvc commit -f`, which
    writes the lock file `dvc repro` would have. The reruns are timed from there."""
    with open(os.path.join(cwd, "fill.sh"), "w") as f:
        f.write("set -e\n" + "\n".join(commands) + "\n")
    subprocess.run(["sh", "fill.sh"], cwd=cwd, check=True)
    os.remove(os.path.join(cwd, "fill.sh"))
    seconds = timed([dvc, "commit", "-f", "-q"], cwd, timeout)
    shown = "over the deadline" if seconds is None else f"{seconds:.2f} s"
    print(f"  outputs made by the shell, `dvc commit -f`: {shown}", flush=True)
    return seconds is not None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--run-up-to", type=int, default=1000,
                        help="run (and rerun) pipelines up to this size; larger ones are only planned")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--first-run-timeout", type=float,
                        help="the first run's own deadline (default: --timeout)")
    parser.add_argument("--shapes", nargs="+", default=["chain", "sweep"])
    args = parser.parse_args()
    dvc = shutil.which("dvc")
    if not dvc:
        sys.exit("dvc is not on PATH: pip install dvc")
    version = subprocess.run([dvc, "--version"], capture_output=True, text=True).stdout.strip()
    rows = []
    for n in args.sizes:
        for shape in args.shapes:
            yaml, first, commands = (chain_yaml if shape == "chain" else sweep_yaml)(n)
            with tempfile.TemporaryDirectory() as d:
                subprocess.run(["git", "init", "-q"], cwd=d, check=True)
                subprocess.run([dvc, "init", "-q"], cwd=d, check=True)
                with open(os.path.join(d, "dvc.yaml"), "w") as f:
                    f.write(yaml)
                row = {"n": n, "shape": shape}
                # `dvc repro --dry` fails on a pipeline never run (a stage's deps
                # are missing), so the dry runs are timed after the first run.
                steps = [("status", [dvc, "status"]), ("dag", [dvc, "dag", "--md"])]
                if n <= args.run_up_to:
                    steps += [
                        ("first run", [dvc, "repro"]),
                        ("no-op rerun", [dvc, "repro"]),
                        ("dry run", [dvc, "repro", "--dry"]),
                        ("--downstream", [dvc, "repro", "--dry", "--downstream", first]),
                        ("status after", [dvc, "status"]),
                    ]
                for name, command in steps:
                    deadline = args.timeout
                    if name == "first run" and args.first_run_timeout:
                        deadline = args.first_run_timeout
                    seconds = timed(command, d, deadline)
                    row[name] = seconds
                    shown = "over the deadline" if seconds is None else f"{seconds:.2f} s"
                    print(f"{shape} {n}: {name}: {shown}", flush=True)
                    if seconds is None and name == "first run" and not fill(dvc, d, commands, args.timeout):
                        break
                rows.append(row)
    print(f"\n{version}, {os.cpu_count()} cores\n")
    names = ["status", "dag", "first run", "no-op rerun", "dry run", "--downstream", "status after"]
    print("| stages | shape | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for row in rows:
        cells = []
        for name in names:
            if name not in row:
                cells.append("")
            elif row[name] is None and name == "first run" and args.first_run_timeout:
                cells.append(f"> {args.first_run_timeout:.0f} s")
            elif row[name] is None:
                cells.append(f"> {args.timeout:.0f} s")
            else:
                cells.append(f"{row[name]:.2f} s")
        print(f"| {row['n']:,} | {row['shape']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
