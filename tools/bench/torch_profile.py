"""PyTorch's per-operation table of one training iteration of the shared reference
benchmark (`../shared/bench/ref_train_bench.py`, the authors' models), to set beside
ours from `perf` over `cargo bench -p gan --bench train` (`tools/bench/perf_ops.py`) on
the same machine.

The reference script runs its iterations at import; this runs it under torch.profiler
with one timed iteration, so the profile covers three (warm-up, timed, FLOP count) and
every count and time is divided by three. Prints the top operations by self CPU time,
their calls per iteration, and the total of aten operations launched per iteration.

Usage: python3 tools/bench/torch_profile.py REF_TRAIN_BENCH SRC ARCH COND [WIDTH] [THREADS]
"""

import runpy
import sys

import torch
from torch.profiler import ProfilerActivity, profile

script, src, arch, cond = sys.argv[1:5]
width = sys.argv[5] if len(sys.argv) > 5 else None
torch.set_num_threads(int(sys.argv[6]) if len(sys.argv) > 6 else 2)
ITERATIONS = 3
sys.argv = [script, src, arch, cond, "cpu", "1"] + ([width] if width else [])

with profile(activities=[ProfilerActivity.CPU]) as prof:
    runpy.run_path(script, run_name="__main__")

events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
total_self = sum(e.self_cpu_time_total for e in events)
# Operations that call no other aten operation are the ones that launch work; the
# composite ones (aten::linear calling aten::addmm) are counted through their parts.
leaves = [e for e in events if e.self_cpu_time_total > 0 and e.cpu_time_total == e.self_cpu_time_total]
print(f"{'operation':<40} {'calls/it':>9} {'self ms/it':>11} {'share':>7}")
for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:25]:
    print(
        f"{e.key:<40} {e.count / ITERATIONS:>9.1f} "
        f"{e.self_cpu_time_total / 1e3 / ITERATIONS:>11.1f} "
        f"{100 * e.self_cpu_time_total / total_self:>6.1f}%"
    )
print(
    f"aten operations per iteration: {sum(e.count for e in events) / ITERATIONS:.0f} "
    f"(leaves: {sum(e.count for e in leaves) / ITERATIONS:.0f}); "
    f"self CPU {total_self / 1e3 / ITERATIONS:.0f} ms per iteration"
)
