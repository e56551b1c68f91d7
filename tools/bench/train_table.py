"""The README's training table, measured in one run on one machine: for each row, the
authors' PyTorch models (`../shared/bench/ref_train_bench.py`, or
`tools/bench/regularizers.py` for a method's row) and ours (`cargo bench -p gan --bench
train`), one after the other, with each process's peak resident memory. Prints a
Markdown table with the date, the machine and the commit it was made on; with every
row run, also writes it to docs/src/generated/train-speed.md, which the guide's
benchmark page includes.

Usage: python3 tools/bench/train_table.py STUDIOGAN_67E0DE0 STUDIOGAN_HEAD [ROW…]
  STUDIOGAN_67E0DE0: the authors' code at the seed's commit (models/, utils/losses.py)
  STUDIOGAN_HEAD:    StudioGAN at 947b35e (src/utils/losses.py, src/utils/diffaug.py)
  ROW: names of rows to run (default all): dcgan-contra, dcgan-proj, dcgan-ac,
       resgan-contra, biggan32-contra, biggan64-contra, dcgan-r1, dcgan-gp,
       dcgan-logan, dcgan-diffaug, dcgan-cr
Needs torch in the running Python (`python -m venv ref && ref/bin/pip install torch`).
"""

import datetime
import os
import pathlib
import platform
import re
import subprocess
import sys

import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
REF_BENCH = ROOT.parent / "shared" / "bench" / "ref_train_bench.py"
seed, head = sys.argv[1], sys.argv[2]
chosen = sys.argv[3:]

# name: (label, our bench's arguments, PyTorch's command after the interpreter, iterations)
ROWS = {
    "dcgan-contra": ("SNDCGAN32 ContraGAN, 1 D + 1 G", ["dcgan32"], [REF_BENCH, seed, "dcgan32", "contra", "cpu"], 4),
    "dcgan-proj": ("SNDCGAN32 projection, 1 D + 1 G", ["dcgan32", "--cond", "proj"], [REF_BENCH, seed, "dcgan32", "proj", "cpu"], 4),
    "dcgan-ac": ("SNDCGAN32 ACGAN, 1 D + 1 G", ["dcgan32", "--cond", "ac"], [REF_BENCH, seed, "dcgan32", "ac", "cpu"], 4),
    "resgan-contra": ("ResGAN32 ContraGAN, 2 D + 1 G", ["resgan32"], [REF_BENCH, seed, "resgan32", "contra", "cpu"], 3),
    "biggan32-contra": ("BigGAN32 width 96 ContraGAN, 5 D + 1 G", ["biggan32"], [REF_BENCH, seed, "biggan32", "contra", "cpu"], 1),
    "biggan64-contra": ("BigGAN64 width 32 ContraGAN, 1 D + 1 G", ["biggan64", "--width", "32"], [REF_BENCH, seed, "biggan64", "contra", "cpu"], 2, "32"),
    "dcgan-r1": ("SNDCGAN32 ContraGAN + R1", ["dcgan32", "--penalty", "r1"], "r1", 3),
    "dcgan-gp": ("SNDCGAN32 ContraGAN + WGAN-GP", ["dcgan32", "--penalty", "gp"], "gp", 3),
    "dcgan-logan": ("SNDCGAN32 projection + LOGAN", ["dcgan32", "--latent-op"], "logan", 3),
    "dcgan-diffaug": ("SNDCGAN32 ContraGAN + DiffAugment", ["dcgan32", "--diffaug"], "diffaug", 3),
    "dcgan-cr": ("SNDCGAN32 ContraGAN + CR", ["dcgan32", "--cr"], "cr", 3),
}


def timed(command):
    """Runs a command under GNU time; returns its output and peak RSS in MiB."""
    done = subprocess.run(["/usr/bin/time", "-f", "peak %M"] + [str(c) for c in command],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"{command} failed:\n{done.stdout}\n{done.stderr}")
    peak = int(re.findall(r"peak (\d+)", done.stderr)[-1]) / 1024
    return done.stdout, peak


def pytorch(row):
    spec = ROWS[row]
    command, iterations = spec[2], spec[3]
    if isinstance(command, str):
        script = ROOT / "tools" / "bench" / "regularizers.py"
        out, peak = timed([sys.executable, script, seed, head, command, "dcgan32", iterations])
        ms = re.findall(r"median (\d+) ms per iteration", out)[-1]
        return float(ms), peak
    width = list(spec[4:5])
    out, peak = timed([sys.executable] + command + [iterations] + width)
    return float(re.search(r"median_ms=([\d.]+)", out).group(1)), peak


def ours(row):
    args = ROWS[row][1] + ["--iterations", str(ROWS[row][3])]
    out, _ = timed(["cargo", "bench", "-q", "-p", "gan", "--bench", "train", "--"] + args)
    # The benchmark's own peak (VmHWM): GNU time's would be cargo's or the benchmark's,
    # whichever is larger.
    peak = float(re.search(r"(\d+) MiB peak RSS", out).group(1))
    return float(re.search(r": (\d+) ms per iteration \(median", out).group(1)), peak


commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                        text=True, cwd=ROOT).stdout.strip()
cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
            if line.startswith("model name")), platform.processor())
lines = [
    f"*Measured {datetime.date.today()} at commit {commit} on {cpu}, "
    f"{len(os.sched_getaffinity(0))} cores, by `python3 tools/bench/train_table.py`; PyTorch "
    f"{torch.__version__} ({torch.get_num_threads()} threads), batch 64, ms per iteration "
    f"(median).*",
    "",
    "| path | PyTorch ms/it | pipe ms/it | pipe / PyTorch | PyTorch peak RSS | pipe peak RSS |",
    "|---|---|---|---|---|---|",
]
print("\n".join(lines))
for row in chosen or ROWS:
    theirs, their_peak = pytorch(row)
    mine, my_peak = ours(row)
    lines.append(f"| {ROWS[row][0]} | {theirs:,.0f} | {mine:,.0f} | {mine / theirs:.2f} | "
                 f"{their_peak:,.0f} MiB | {my_peak:,.0f} MiB |")
    print(lines[-1], flush=True)
if not chosen:
    out = ROOT / "docs" / "src" / "generated" / "train-speed.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
