"""Where a training iteration's CPU time goes, by kind of operation, from `perf`'s
samples of the training benchmark: the side of `tools/bench/torch_profile.py`'s
per-operation table that is ours.

    perf record -F 149 --call-graph dwarf,65528 -o perf.data \\
        target/release/deps/train-HASH dcgan32 --iterations 2
    perf script -i perf.data > stacks.txt
    python3 tools/bench/perf_ops.py stacks.txt

Each sample counts once, for the innermost frame that names one of the kinds below
(the GEMM's kernels carry no unwind information, so they are recognised by their own
names); setup (initialization, checkpoints, the synthetic data) is shown but left out
of the shares.
"""

import collections
import re
import sys

# (kind, pattern on a frame), innermost match wins; checked in this order per frame.
KINDS = [
    ("setup (not timed)", r"gan::init|Snapshot::save|data::synthetic|data::pack"),
    ("GEMM (faer)", r"gemm_v0_gemm|private_gemm|Millikernel|faer::linalg::matmul"),
    ("im2col", r"kernels::conv::(cols_row|shifted_plane|im2col)"),
    ("col2im", r"kernels::conv::(col2im|add_cols)"),
    ("convolution, other", r"kernels::conv::"),
    ("RGB convolutions (direct)", r"kernels::thin::"),
    ("BatchNorm and bias maps", r"kernels::affine::"),
    ("pools and resampling", r"kernels::pool::|burn_flex::ops::pool"),
    ("matmul (burn-flex)", r"burn_flex::ops::matmul"),
    ("copies and layout (burn-flex)", r"StridedIter|to_contiguous|FlexTensor::reshape|burn_flex::ops::cat"),
    ("element-wise and reductions (burn-flex)", r"burn_flex::"),
    ("autodiff bookkeeping", r"burn_autodiff::"),
    ("Adam, EMA, spectral norm (ours)", r"gan::adam|gan::train::step::update_ema|gan::layers::weight"),
]


def kind_of(frames):
    if frames and "[kernel.kallsyms]" in frames[0]:
        return "kernel (page faults, scheduling)"
    for frame in frames:
        for kind, pattern in KINDS:
            if re.search(pattern, frame):
                return kind
    return "other"


def main(path):
    counts = collections.Counter()
    for sample in open(path).read().split("\n\n"):
        frames = [line.strip() for line in sample.strip().split("\n")[1:] if line.strip()]
        if frames:
            counts[kind_of(frames)] += 1
    setup = counts.pop("setup (not timed)", 0)
    total = sum(counts.values())
    print(f"{'kind':<42} {'share':>6}")
    for kind, n in counts.most_common():
        print(f"{kind:<42} {100 * n / total:5.1f}%")
    print(f"({total} samples timed, {setup} in setup)")


main(sys.argv[1])
