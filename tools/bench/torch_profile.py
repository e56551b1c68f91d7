"""PyTorch's per-operation table of one training iteration of the shared reference
benchmark (`../shared/bench/ref_train_bench.py`, the authors' models), to set beside
ours from `perf` over `cargo bench -p gan --bench train` (`tools/bench/perf_ops.py`) on
the same machine, and its count of aten operations beside the bench's `--count`.

The reference script builds the models and runs its iterations at import; this runs it
once, then profiles two more iterations of its own `iteration` with torch.profiler, so
construction and the first iteration's allocations stay out of every count and time.
Prints the top operations by self CPU time, their calls per iteration, and the aten
operations per iteration, with how many of them do work (`aten_ops.does_work`).

Usage: python3 tools/bench/torch_profile.py REF_TRAIN_BENCH SRC ARCH COND [WIDTH] [THREADS]
"""

import runpy
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from aten_ops import aten_events, counts

script, src, arch, cond = sys.argv[1:5]
width = sys.argv[5] if len(sys.argv) > 5 else None
torch.set_num_threads(int(sys.argv[6]) if len(sys.argv) > 6 else 2)
ITERATIONS = 2
sys.argv = [script, src, arch, cond, "cpu", "1"] + ([width] if width else [])

reference = runpy.run_path(script, run_name="__main__")
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for _ in range(ITERATIONS):
        reference["iteration"]()

events = aten_events(prof)
total_self = sum(e.self_cpu_time_total for e in events)
ops, work = counts(prof, ITERATIONS)
print(f"{'operation':<40} {'calls/it':>9} {'self ms/it':>11} {'share':>7}")
for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:25]:
    print(
        f"{e.key:<40} {e.count / ITERATIONS:>9.1f} "
        f"{e.self_cpu_time_total / 1e3 / ITERATIONS:>11.1f} "
        f"{100 * e.self_cpu_time_total / total_self:>6.1f}%"
    )
print(
    f"aten operations per iteration: {ops:.0f} ({work:.0f} doing work); "
    f"self CPU {total_self / 1e3 / ITERATIONS:.0f} ms per iteration"
)
