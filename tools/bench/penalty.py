"""PyTorch's side of the gradient-penalty benchmark: the training iteration of the
shared reference benchmark (`../shared/bench/ref_train_bench.py`: the authors' models,
batch 64, hinge, ContraGAN's 2C loss) with and without the seed's WGAN-GP term
(`calc_derv4gp`, λ 10, by PyTorch's double backward) in every D step. Prints the median
milliseconds per iteration of each and the penalty's overhead; compare with
`cargo bench -p gan --bench train -- dcgan [--penalty gp]` on the same machine.

Usage: python3 tools/bench/penalty.py STUDIOGAN_67E0DE0 [ARCH] [ITERS] [THREADS]"""

import importlib
import sys
import time

import torch
import torch.nn.functional as F

src = sys.argv[1]
arch = sys.argv[2] if len(sys.argv) > 2 else "dcgan32"
iters = int(sys.argv[3]) if len(sys.argv) > 3 else 5
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
sys.path.insert(0, src)
models = importlib.import_module(f"models.{arch}")
losses = importlib.import_module("utils.losses")
biggan = arch.startswith("biggan")
width, z_dim, d_steps, K, batch = (96, 80, 5, 10, 64) if biggan else (64, 128, 1, 10, 64)
flags = dict(auxiliary_classifier=False, projection_discriminator=False, contrastive_training=True)
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
    sim = torch.exp(e @ e.T)
    n = e.shape[0]
    off = ~torch.eye(n, dtype=torch.bool)
    same = (y[:, None] == y[None, :]) & off
    e2p = torch.exp((e * p).sum(1))
    return -torch.log((e2p + (sim * same).sum(1)) / (e2p + (sim * off).sum(1))).mean()


def iteration(penalty):
    for _ in range(d_steps):
        x = torch.rand(batch, 3, 32, 32) * 2 - 1
        y = torch.randint(0, K, (batch,))
        z, yf = torch.randn(batch, z_dim), torch.randint(0, K, (batch,))
        with torch.no_grad():
            fake = G(z, yf)
        a, c, adv_real = D(x, y)
        _, _, adv_fake = D(fake, yf)
        loss = F.relu(1 - adv_real).mean() + F.relu(1 + adv_fake).mean() + c2(c, a, y)
        if penalty:
            loss = loss + 10.0 * losses.calc_derv4gp(D, x, fake, y, "cpu")
        od.zero_grad()
        loss.backward()
        od.step()
    z, yf = torch.randn(batch, z_dim), torch.randint(0, K, (batch,))
    a, c, adv = D(G(z, yf), yf)
    loss = -adv.mean() + c2(c, a, yf)
    og.zero_grad()
    loss.backward()
    og.step()


results = {}
for penalty in (False, True):
    iteration(penalty)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        iteration(penalty)
        times.append(time.perf_counter() - start)
    times.sort()
    results[penalty] = 1000 * times[len(times) // 2]
    print(f"{arch} ContraGAN batch {batch}{' + GP' if penalty else ''}: "
          f"median {results[penalty]:.0f} ms per iteration ({torch.get_num_threads()} threads)")
print(f"the penalty's overhead: {results[True] / results[False]:.2f}x")
