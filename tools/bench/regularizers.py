"""PyTorch's side of the regularizer benchmarks: the training iteration of the shared
reference benchmark (`../shared/bench/ref_train_bench.py`: the authors' models, batch
64, hinge) without and with one regularizer, by PyTorch's double backward:

- `gp`: the seed's WGAN-GP term (`calc_derv4gp`, λ 10) in every D step, ContraGAN's 2C
  loss as in the reference benchmark;
- `r1`: v0.4's R1 (`cal_r1_reg`, λ 10) on D's pass over the real images, 2C loss too;
- `diffaug`: v0.4's DiffAugment (`apply_diffaug`, color, translation, cutout) on D's
  real and fake inputs in D steps and on the fakes in G steps, 2C loss too;
- `cr`: the seed's consistency regularization (`consistency_reg`, λ 10): D also on the
  real images' augmented copies (the loader's flips stand in for them), the mean
  squared difference of the two adversarial logits, 2C loss too;
- `logan`: the seed's LOGAN (`latent_optimise`: α 0.9, β 0.1, rate 0.8) before D's and
  G's passes over fakes, as its trainer's `run` does (projection conditioning: that loop
  has no 2C loss). The seed's LOGAN stops in PyTorch's backward with spectral norm (the
  train-mode pass after the move updates in place the vectors its eval-mode graph saved);
  here eval mode works on copies (`eval_vectors_kept` of tools/fixtures/common.py).

Prints the median milliseconds per iteration of each and the regularizer's overhead;
with `--ops`, also the aten operations of one iteration of each (torch.profiler), to set
beside `cargo bench -p gan --bench train -- … --count`; compare with `cargo bench -p gan --bench train -- dcgan [--penalty gp|r1 | --latent-op |
--diffaug | --cr]`
on the same machine.

Usage: python3 tools/bench/regularizers.py STUDIOGAN_67E0DE0 STUDIOGAN_HEAD gp|r1|logan|diffaug|cr
       [ARCH] [ITERS] [THREADS] [--ops]"""

import contextlib
import importlib.util
import pathlib
import sys
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from aten_ops import counts

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "fixtures"))
from common import eval_vectors_kept  # noqa: E402

count_ops = "--ops" in sys.argv
args = [a for a in sys.argv if a != "--ops"]
seed, head, mode = args[1], args[2], args[3]
arch = args[4] if len(args) > 4 else "dcgan32"
iters = int(args[5]) if len(args) > 5 else 5
torch.set_num_threads(int(args[6]) if len(args) > 6 else 2)
sys.path.insert(0, seed)


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


models = load(f"{seed}/models/{arch}.py", arch)
seed_losses = load(f"{seed}/utils/losses.py", "seed_losses")
# v0.4's losses import its own `utils` package, which the seed's shadows.
shadowed = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "utils" or k.startswith("utils.")}
sys.path.insert(0, f"{head}/src")
head_losses = load(f"{head}/src/utils/losses.py", "head_losses")
head_diffaug = load(f"{head}/src/utils/diffaug.py", "head_diffaug")
sys.path.remove(f"{head}/src")
sys.modules.update(shadowed)
biggan = arch.startswith("biggan")
width, z_dim, d_steps, K, batch = (96, 80, 5, 10, 64) if biggan else (64, 128, 1, 10, 64)
contrastive = mode != "logan"
flags = dict(auxiliary_classifier=False, projection_discriminator=not contrastive,
             contrastive_training=contrastive)
G = models.Generator(z_dim=z_dim, shared_dim=128, g_conv_dim=width, g_spectral_norm=biggan,
                     attention=biggan, at_after_th_gen_block=2, leaky_relu=False, num_classes=K,
                     synchronized_bn=False, initialize="ortho", **flags)
D = models.Discriminator(d_conv_dim=width, d_spectral_norm=True, attention=biggan,
                         at_after_th_dis_block=1, leaky_relu=False, hyper_dim=512, num_classes=K,
                         nonlinear_embed=False, normalize_embed=True, synchronized_bn=False,
                         initialize="ortho", **flags)
og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))


def c2(e, p, y):
    if not contrastive:
        return 0.0
    sim = torch.exp(e @ e.T)
    n = e.shape[0]
    off = ~torch.eye(n, dtype=torch.bool)
    same = (y[:, None] == y[None, :]) & off
    e2p = torch.exp((e * p).sum(1))
    return -torch.log((e2p + (sim * same).sum(1)) / (e2p + (sim * off).sum(1))).mean()


def augmented(images):
    return head_diffaug.apply_diffaug(images, "color,translation,cutout")


def moved(z, y, on):
    if not on or mode != "logan":
        return z
    return seed_losses.latent_optimise(z, y, G, D, 1, 0.8, 0.9, 0.1, False, "cpu")


def iteration(on):
    for _ in range(d_steps):
        x = torch.rand(batch, 3, 32, 32) * 2 - 1
        y = torch.randint(0, K, (batch,))
        z, yf = torch.randn(batch, z_dim), torch.randint(0, K, (batch,))
        z = moved(z, yf, on)
        with torch.no_grad() if not (on and mode == "logan") else contextlib.nullcontext():
            fake = G(z, yf)
        if on and mode == "r1":
            x.requires_grad_(True)
        seen, seen_fake = (augmented(x), augmented(fake)) if on and mode == "diffaug" else (x, fake)
        a, c, adv_real = D(seen, y)
        _, _, adv_fake = D(seen_fake, yf)
        loss = F.relu(1 - adv_real).mean() + F.relu(1 + adv_fake).mean() + c2(c, a, y)
        if on and mode == "cr":
            _, _, adv_copy = D(x.flip(3), y)
            loss = loss + 10.0 * F.mse_loss(adv_real, adv_copy)
        if on and mode == "gp":
            loss = loss + 10.0 * seed_losses.calc_derv4gp(D, x, fake, y, "cpu")
        if on and mode == "r1":
            loss = loss + 10.0 * head_losses.cal_r1_reg(adv_real, x, "cpu")
        od.zero_grad()
        loss.backward()
        od.step()
    z, yf = torch.randn(batch, z_dim), torch.randint(0, K, (batch,))
    fake = G(moved(z, yf, on), yf)
    a, c, adv = D(augmented(fake) if on and mode == "diffaug" else fake, yf)
    loss = -adv.mean() + c2(c, a, yf)
    og.zero_grad()
    loss.backward()
    og.step()


results = {}
conditioning = "ContraGAN" if contrastive else "projection"
with eval_vectors_kept():
    for on in (False, True):
        iteration(on)
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            iteration(on)
            times.append(time.perf_counter() - start)
        times.sort()
        results[on] = 1000 * times[len(times) // 2]
        print(f"{arch} {conditioning} batch {batch}{' + ' + mode if on else ''}: "
              f"median {results[on]:.0f} ms per iteration ({torch.get_num_threads()} threads)")
        if count_ops:
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                iteration(on)
            ops, work = counts(prof, 1)
            print(f"  aten operations per iteration: {ops:.0f} ({work:.0f} doing work)")
print(f"{mode}'s overhead: {results[True] / results[False]:.2f}x")
