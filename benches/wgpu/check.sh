#!/usr/bin/env bash
# The GPU code path without a GPU: burn's wgpu backend (the burn-cubecl kernels CUDA
# runs, fused and autotuned) on whatever Vulkan driver answers; on a machine without a
# GPU, Mesa's software one (lavapipe: `apt-get install mesa-vulkan-drivers libvulkan1`).
#   1. a subset of the parity tests of crates/gan and crates/metrics on it, at the CPU's
#      tolerances;
#   2. kernels launched per training iteration, fused and not, for every row of the
#      training benchmark, beside the counting backend's operations.
# Not part of .ci/run: the wgpu backend's clean build takes 12-15 minutes on 2 cores.
# Writes its logs under $OUT (or /tmp/wgpu-check); prints a summary.
#
#   bash benches/wgpu/check.sh [ROW…]   (rows as the train bench takes them, quoted)
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/wgpu-check}
mkdir -p "$out"
say() { echo "$*" | tee -a "$out/summary.txt"; }
: > "$out/summary.txt"
say "Vulkan: $(vulkaninfo --summary 2>/dev/null | sed -n 's/.*deviceName *= *//p' | head -1)"
say "commit $(git rev-parse --short HEAD), $(date -u +%F)"

# Networks and losses on their fixtures; metrics and Inception on theirs. The 128×128
# networks and the long gradient checks are left to the CPU and CUDA runs.
tests=(
    "gan gan_parity contrastive_loss_and_gradients_match_the_reference"
    "gan gan_parity imported_checkpoints_match_the_reference_outputs"
    "gan gan_parity gradient_penalties_and_their_gradients_match_the_reference"
    "gan methods_parity"
    "metrics metrics_parity"
    "metrics inception_parity"
    "metrics backbone_parity every_backbone_matches_its_reference_after_either_resize"
)
for t in "${tests[@]}"; do
    set -- $t
    log="$out/$2${3:+-$3}.log"
    if timeout 1800 cargo test --release --locked -p "$1" --features wgpu --test "$2" \
        -- ${3:-} --nocapture > "$log" 2>&1; then
        say "on wgpu: $2 ${3:-}: passed ($(grep -ho '[0-9]* passed' "$log" | head -1))"
    else
        say "on wgpu: $2 ${3:-}: FAILED (see $log)"
    fi
done

rows=("$@")
if [ ${#rows[@]} -eq 0 ]; then
    rows=("dcgan32" "dcgan32 --cond proj" "dcgan32 --cond ac" "resgan32" "biggan32"
        "biggan64 --width 32" "dcgan32 --penalty r1" "dcgan32 --penalty gp"
        "dcgan32 --latent-op" "dcgan32 --diffaug" "dcgan32 --cr")
fi
bench() { cargo bench --locked -p gan --bench train --features wgpu -- "$@" 2>>"$out/train.log"; }
# Batch 8: a software driver runs batch 64 for minutes an iteration, and what is
# launched does not depend on the batch (but for autotune's choices, which can).
batch=${BATCH:-8}
for row in "${rows[@]}"; do
    # One iteration after the warm-up: the counts do not vary from one to the next.
    for mode in --count --wgpu --wgpu-unfused; do
        say "$(bench $row --batch "$batch" --iterations 1 $mode)"
    done
done
