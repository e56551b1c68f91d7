"""The PyTorch side of the GPU check (benches/gpu/check.sh), and the inputs it makes.

    python reference.py weights OUT.pth
        FID Inception-v3 with random weights and BatchNorm statistics, in pytorch-fid's
        layout and legacy format (the released file cannot travel: 95 MB).
    python reference.py inception-fixture WEIGHTS IMAGES_DIR OUT_DIR
        A fixture set in the layout of shared/fixtures/fid-inception (images.txt,
        images/, expected.npz) for WEIGHTS, computed by pytorch-fid on the CPU in float32.
    python reference.py images DIR N SIZE
        N random RGB PNGs of SIZE x SIZE (for `pipe metric features`).
    python reference.py features WEIGHTS DEVICE SIZE BATCH N
        pytorch-fid's images/s at SIZE x SIZE input and batch BATCH on DEVICE.
    python reference.py losses A.jsonl B.jsonl
        The largest differences between two training logs (metrics.jsonl), step by step.

Needs torch and pytorch-fid, as shared/bench does; the PNG writer is the standard library's.
"""

import json
import os
import shutil
import struct
import sys
import time
import zlib


def png(path, width, height, rgb):
    raw = b"".join(b"\x00" + rgb[y * width * 3:(y + 1) * width * 3] for y in range(height))
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 1)))
        f.write(chunk(b"IEND", b""))


def random_inception():
    import torch
    import pytorch_fid.inception as pfi
    load = torch.nn.Module.load_state_dict
    torch.nn.Module.load_state_dict = lambda self, *a, **k: None
    pfi.load_state_dict_from_url = lambda *a, **k: {}
    try:
        net = pfi.fid_inception_v3()
    finally:
        torch.nn.Module.load_state_dict = load
    g = torch.Generator().manual_seed(1234)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return net


def with_weights(path):
    import torch
    import pytorch_fid.inception as pfi
    state = torch.load(path, map_location="cpu")
    pfi.load_state_dict_from_url = lambda *a, **k: state
    return pfi


def main():
    what, args = sys.argv[1], sys.argv[2:]
    if what == "weights":
        import torch
        torch.save(random_inception().state_dict(), args[0], _use_new_zipfile_serialization=False)
    elif what == "inception-fixture":
        import numpy as np
        import torch
        from PIL import Image
        weights, images, out = args
        pfi = with_weights(weights)
        pool = pfi.InceptionV3([3]).eval()
        fc = pfi.fid_inception_v3().fc
        os.makedirs(os.path.join(out, "images"), exist_ok=True)
        names = sorted(n for n in os.listdir(images) if n.endswith(".png"))
        with open(os.path.join(out, "images.txt"), "w") as f:
            f.write("".join(n + "\n" for n in names))
        rows = {"pool3": [], "logits": [], "logits_unbiased": []}
        with torch.no_grad():
            for n in names:
                shutil.copy(os.path.join(images, n), os.path.join(out, "images", n))
                x = np.asarray(Image.open(os.path.join(images, n)).convert("RGB"), dtype=np.float32)
                x = torch.from_numpy(x / 255.0).permute(2, 0, 1)[None]
                p = pool(x)[0].reshape(1, -1)
                rows["pool3"].append(p)
                rows["logits"].append(fc(p))
                rows["logits_unbiased"].append(p @ fc.weight.T)
        np.savez(os.path.join(out, "expected.npz"),
                 **{k: torch.cat(v).numpy() for k, v in rows.items()})
    elif what == "images":
        directory, n, size = args[0], int(args[1]), int(args[2])
        os.makedirs(directory, exist_ok=True)
        for i in range(n):
            png(os.path.join(directory, f"{i:05}.png"), size, size, os.urandom(size * size * 3))
    elif what == "features":
        import torch
        weights, device, size, batch, n = args[0], args[1], int(args[2]), int(args[3]), int(args[4])
        net = with_weights(weights).InceptionV3([3]).to(device).eval()
        x = torch.rand(batch, 3, size, size, device=device)
        sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
        with torch.no_grad():
            net(x)
            sync()
            start, done = time.perf_counter(), 0
            while done < n:
                net(x)
                done += batch
            sync()
        print(f"{done / (time.perf_counter() - start):.1f}")
    elif what == "losses":
        read = lambda p: [json.loads(line) for line in open(p) if line.strip()]
        a, b = read(args[0]), read(args[1])
        worst = 0.0
        for ra, rb in zip(a, b):
            for key in ("d_loss", "g_loss"):
                diff = abs(ra[key] - rb[key]) / max(abs(rb[key]), 1e-6)
                worst = max(worst, diff)
                print(f"step {ra['step']} {key}: {ra[key]:.6f} vs {rb[key]:.6f} (relative {diff:.2e})")
        print(f"steps {min(len(a), len(b))}, largest relative difference {worst:.3e}")
    else:
        sys.exit(f"unknown command {what}")


if __name__ == "__main__":
    main()
