"""Reference timing of StudioGAN v0.4's StyleGAN2 training iteration on CIFAR-10, with
the authors' model code imported from their checkout (argv[1], HEAD): ms per iteration
of one D step (G without gradients, D on real and fake images, the logistic loss, Adam)
and one G step (G and D, the logistic loss, Adam, the EMA update), the steps of v0.4's
worker for `backbone: "stylegan2"`; with `r1`, its lazy R1 step (D on the real images,
`stylegan_cal_r1_reg`, double backward, Adam) after every D step (every 16th in the
configuration); with `ada`, ADA's `bgc` pipeline (`utils/ada_aug.py`, `AdaAugment` as its
config.py builds it) at a fixed p of 0.6 on every image D sees, R1's included. G and D
as v0.4's models/model.py builds them for CIFAR-10 (z and w
512, mapping 2 layers, channel_base 32768, the "orig" D, minibatch groups of 32, cAdaIN
and SPD), channel_max from argv (512 in the configuration).

Usage: python tools/bench/ref_stylegan2_bench.py STUDIOGAN DEVICE [iters] [channel_max]
       [batch] [r1] [ada]
Mirrors `cargo bench -p gan --bench train -- stylegan2 [--width N] [--penalty r1] [--ada]`."""

import copy
import sys
import time
import types

import torch
import torch.nn.functional as F

src, dev = sys.argv[1], sys.argv[2]
iters = int(sys.argv[3]) if len(sys.argv) > 3 else 3
channel_max = int(sys.argv[4]) if len(sys.argv) > 4 else 512
batch = int(sys.argv[5]) if len(sys.argv) > 5 else 64
r1, ada = "r1" in sys.argv[6:], "ada" in sys.argv[6:]
sys.path.insert(0, f"{src}/src")
from models import stylegan2  # noqa: E402
from utils import ada_aug, losses  # noqa: E402

augment = lambda x: x  # noqa: E731
if ada:
    augment = ada_aug.AdaAugment(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
                                 brightness=1, contrast=1, lumaflip=1, hue=1,
                                 saturation=1).train().to(dev).requires_grad_(False)
    augment.p.copy_(torch.as_tensor(0.6))

K, Z = 10, 512
model = types.SimpleNamespace(info_type="N/A")
G = stylegan2.Generator(z_dim=Z, c_dim=K, w_dim=512, img_resolution=32, img_channels=3, MODEL=model,
                        mapping_kwargs={"num_layers": 2},
                        synthesis_kwargs={"channel_base": 32768, "channel_max": channel_max,
                                          "num_fp16_res": 0, "conv_clamp": None}).to(dev)
D = stylegan2.Discriminator(c_dim=K, img_resolution=32, img_channels=3, architecture="orig",
                            channel_base=32768, channel_max=channel_max, num_fp16_res=0, conv_clamp=None,
                            cmap_dim=None, d_cond_mtd="SPD", aux_cls_type="W/O", d_embed_dim=512,
                            num_classes=K, normalize_d_embed=False, block_kwargs={}, mapping_kwargs={},
                            epilogue_kwargs={"mbstd_group_size": 32}, MODEL=model).to(dev)
G_ema = copy.deepcopy(G).eval()
# v0.4's config.py: lr and betas rescaled for lazy regularization (G every 4, D every 16).
og = torch.optim.Adam(G.parameters(), 0.0025 * 4 / 5, betas=(0.0, 0.99 ** (4 / 5)), eps=1e-8)
od = torch.optim.Adam(D.parameters(), 0.0025 * 16 / 17, betas=(0.0, 0.99 ** (16 / 17)), eps=1e-8)


def toggle(net, on):
    for p in net.parameters():
        p.requires_grad_(on)


def fakes():
    z = torch.randn(batch, Z, device=dev)
    y = torch.randint(0, K, (batch,), device=dev)
    return G(z, F.one_hot(y, K)), y


def iteration():
    toggle(G, False)
    toggle(D, True)
    x = torch.rand(batch, 3, 32, 32, device=dev) * 2 - 1
    y = torch.randint(0, K, (batch,), device=dev)
    fake, yf = fakes()
    loss = (F.softplus(-D(augment(x), y)["adv_output"]).mean()
            + F.softplus(D(augment(fake), yf)["adv_output"]).mean())
    od.zero_grad()
    loss.backward()
    od.step()
    if r1:
        x.requires_grad_(True)
        penalty = losses.stylegan_cal_r1_reg(adv_output=D(augment(x), y)["adv_output"], images=x) * 16 * 0.01
        od.zero_grad()
        penalty.backward()
        od.step()
    toggle(D, False)
    toggle(G, True)
    fake, yf = fakes()
    loss = F.softplus(-D(augment(fake), yf)["adv_output"]).mean()
    og.zero_grad()
    loss.backward()
    og.step()
    with torch.no_grad():
        for pe, p in zip(G_ema.parameters(), G.parameters()):
            pe.copy_(p.lerp(pe, 0.999))
        for be, b in zip(G_ema.buffers(), G.buffers()):
            be.copy_(b)


def sync():
    if dev.startswith("cuda"):
        torch.cuda.synchronize()


G.train()
D.train()
iteration()
sync()
ts = []
for _ in range(iters):
    s = time.perf_counter()
    iteration()
    sync()
    ts.append(time.perf_counter() - s)
ts.sort()
print(f"StyleGAN2 channel_max={channel_max} batch={batch} r1={'every D step' if r1 else 'off'} ada={'bgc p 0.6' if ada else 'off'} device={dev} "
      f"threads={torch.get_num_threads()} median_ms={1000 * ts[len(ts) // 2]:.1f} min_ms={1000 * ts[0]:.1f}")
