"""The reference for `cargo bench -p metrics --bench backbones`: the same three networks
in PyTorch on the CPU, 2 threads, random weights, 32×32 images resized to 224×224
(bilinear) and normalized as the metrics do, batch 8, images/s (best of 3).

    python crates/metrics/benches/backbones_speed.py --studiogan STUDIOGAN --dinov2 DINOV2 [NAME…]

SwAV: torchvision's resnet50 (what the swav hub model is); DINO: StudioGAN v0.4's
`metrics/vit.py` ViT-S/8 (CLS of the last 4 blocks); DINOv2: dinov2's ViT-L/14 as its
hub builds it. Needs torch, torchvision and the two checkouts.
"""

import argparse
import importlib.util
import os
import sys
import time
from functools import partial

os.environ["XFORMERS_DISABLED"] = "1"

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

BATCH = 8


def module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--studiogan", required=True)
    parser.add_argument("--dinov2", required=True)
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(2)
    vits = module(os.path.join(args.studiogan, "src/metrics/vit.py"), "studiogan_vit")
    sys.path.insert(0, args.dinov2)
    from dinov2.models.vision_transformer import vit_large

    def swav():
        net = torchvision.models.resnet50()
        net.fc = nn.Identity()
        return net

    def dino():
        net = vits.vit_small(patch_size=8, num_classes=0, num_last_blocks=4)
        return lambda x: net(x)[0]

    def dinov2():
        return vit_large(img_size=518, patch_size=14, init_values=1.0, block_chunks=0)

    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    images = torch.rand(BATCH, 3, 32, 32)
    for name, build in [("swav", swav), ("dino", dino), ("dinov2", dinov2)]:
        if args.names and name not in args.names:
            continue
        net = build()
        if isinstance(net, nn.Module):
            net.eval()

        def run(x):
            x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
            return net((x - mean) / std)

        with torch.inference_mode():
            run(images[:1])
            best = min(timed(run, images) for _ in range(3))
        print(f"{name} on PyTorch {torch.__version__} CPU, 2 threads, 32×32 input, "
              f"batch {BATCH}: {BATCH / best:.2f} images/s")


def timed(run, images):
    start = time.perf_counter()
    run(images)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
