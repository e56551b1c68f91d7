#!/usr/bin/env bash
# Builds, here, what the GPU check (benches/gpu/check.sh) runs there: the GPU machine
# has no Rust toolchain and reaches no registry. Everything goes to .device/ (ignored by
# git), which the device tool carries: `carry: [".device"]`, 64 MiB at most.
#
#   bash benches/gpu/prepare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${SHARED:-../shared}
out=.device
rm -rf "$out" && mkdir -p "$out/bin" "$out/fixtures"

# Paths of the executables cargo builds, from its JSON messages.
executables() {
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"], m["executable"])'
}

cargo build --release --locked --features cuda --bin pipe
cp target/release/pipe "$out/bin/pipe"
{
    cargo test --release --locked --features cuda -p gan -p metrics --no-run --message-format=json
    cargo bench --locked --features cuda -p gan --bench train --no-run --message-format=json
    cargo bench --locked --features cuda -p metrics --bench backbones --no-run --message-format=json
} | executables | while read -r name path; do
    case "$name" in
        gan_parity | inception_parity | metrics_parity | backbone_parity | train | backbones)
            cp "$path" "$out/bin/$name" ;;
    esac
done
strip "$out"/bin/*

# Fixtures, but the 95 MB Inception weights: check.sh makes a set of its own there.
cp -r "$shared/fixtures/studiogan" "$shared/fixtures/metrics" "$shared/fixtures/losses" "$out/fixtures/"
mkdir -p "$out/fid-images"
cp "$shared"/fixtures/fid-inception/images/*.png "$out/fid-images/"
cp -r "$shared/bench" "$out/bench"
cp -r "$shared/reference/studiogan-67e0de0" "$out/studiogan"

du -sh "$out" "$out"/bin/*
size=$(du -sm "$out" | cut -f1)
if [ "$size" -gt 60 ]; then
    echo "error: $out is $size MiB; the device tool carries 64 MiB with the working tree" >&2
    exit 1
fi
