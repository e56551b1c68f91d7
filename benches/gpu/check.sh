#!/usr/bin/env bash
# Every GPU check of the project in one call, on a machine with a GPU, PyTorch and
# pytorch-fid, from what benches/gpu/prepare.sh built here (.device/):
#   1. the parity tests on CUDA (gan, 2C loss, metrics; Inception on a fixture set made
#      there with random weights; the SwAV, DINO and DINOv2 backbones on theirs);
#   2. CUDA against CPU: the same 20 training steps, same seed, losses compared;
#   3. speed, side by side with PyTorch in the same call: FID Inception features (32×32
#      and 299×299, batch 50 and 200) and training iterations (SNDCGAN32 and BigGAN32
#      ContraGAN, batch 64), printed as ratios;
#   4. data parallel training on 1 and 2 devices (two GPUs, or shards sharing one);
#   5. the quickstart on the GPU and on the CPU cores (QUICKSTART=1; it takes minutes).
# Writes its logs under $OUT (or /tmp/gpu-check). Not yet run on a GPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
dev=.device
bin=$dev/bin
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
ref() { python3 benches/gpu/reference.py "$@"; }
section() { printf '\n== %s\n' "$*" | tee -a "$out/summary.txt"; }
say() { echo "$*" | tee -a "$out/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"

section "parity on CUDA"
export PIPE_FIXTURES=$PWD/$dev/fixtures
# This repository's own fixtures (penalties, LOGAN, 128×128 networks), in this copy of it.
export PIPE_OUR_FIXTURES=$PWD/fixtures
ref weights "$dev/weights.pth"
ref inception-fixture "$dev/weights.pth" "$dev/fid-images" "$PIPE_FIXTURES/fid-inception"
for t in gan_parity metrics_parity inception_parity backbone_parity; do
    if "$bin/$t" --nocapture > "$out/$t.log" 2>&1; then say "$t: passed"; else say "$t: FAILED (see $t.log)"; fi
done
grep -hE "relative|worst|max" "$out"/*_parity.log | head -40 >> "$out/summary.txt"

section "CUDA against CPU, 20 training steps"
work=$(mktemp -d)
pipeline=benches/gpu/train_parity.ron
if "$bin/pipe" --cache "$work/cache" run "$pipeline" --gpus 0 > "$out/parity-run.log" 2>&1; then
    dir() { "$bin/pipe" --cache "$work/cache" show "$pipeline" "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["output_dir"])'; }
    ref losses "$(dir cuda)/metrics.jsonl" "$(dir cpu)/metrics.jsonl" > "$out/losses.txt"
    tail -1 "$out/losses.txt" | tee -a "$out/summary.txt"
else
    say "training comparison FAILED (see parity-run.log)"
fi

section "speed: FID Inception features, images/s (ours / PyTorch)"
for size in 32 299; do
    n=$([ "$size" = 32 ] && echo 2000 || echo 400)
    ref images "$work/img$size" "$n" "$size"
    for batch in 50 200; do
        start=$(date +%s.%N)
        "$bin/pipe" metric features --weights "$dev/weights.pth" --device cuda --batch "$batch" \
            --out "$work/f.npz" "$work/img$size" > /dev/null 2>> "$out/features.log"
        ours=$(python3 -c "print(f'{$n / ($(date +%s.%N) - $start):.1f}')")
        theirs=$(ref features "$dev/weights.pth" cuda "$size" "$batch" "$n")
        say "$size×$size batch $batch: ours $ours (whole command, PNGs decoded), PyTorch $theirs, ratio $(python3 -c "print(f'{$ours / $theirs:.2f}')")"
    done
done

section "speed: SwAV, DINO and DINOv2 features on CUDA, 32×32 input resized to 224, batch 8, images/s (ours)"
"$bin/backbones" --bench 2>> "$out/backbones.log" | tee -a "$out/summary.txt"

section "speed: training iteration, ms (ours / PyTorch)"
for pair in "dcgan dcgan32" "biggan biggan32" "biggan64 biggan64"; do
    set -- $pair
    ours=$("$bin/train" --iterations 5 "$1" 2>>"$out/train.log" | sed -n 's/.*: \([0-9]*\) ms per iteration.*/\1/p')
    theirs=$(python3 "$dev/bench/ref_train_bench.py" "$dev/studiogan" "$2" contra cuda 5 2>>"$out/train.log" | tee -a "$out/train.log" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
    say "$2 ContraGAN batch 64: ours $ours ms, PyTorch $theirs ms, ratio $(python3 -c "print(f'{$ours / $theirs:.2f}')" 2>/dev/null)"
done

section "data parallel: SNDCGAN32 ContraGAN iteration on 1 and 2 devices (Train(devices: N))"
for devices in 1 2; do
    ms=$("$bin/train" --iterations 5 --devices "$devices" dcgan 2>>"$out/train.log" | tee -a "$out/train.log" | sed -n 's/.*: \([0-9]*\) ms per iteration.*/\1/p')
    say "$devices device(s): $ms ms per iteration"
done

if [ "${QUICKSTART:-0}" = 1 ]; then
    section "the quickstart, seconds"
    for gpus in 0 none; do
        start=$(date +%s)
        "$bin/pipe" --cache "$work/qs-$gpus" run pipelines/quickstart.ron --gpus "$gpus" -j 16 > "$out/quickstart-$gpus.log" 2>&1
        say "--gpus $gpus: $(( $(date +%s) - start )) s"
    done
fi
cat "$out/summary.txt"
