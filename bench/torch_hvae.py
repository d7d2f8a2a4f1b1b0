#!/usr/bin/python3
"""The PyTorch peer of vae-dist's layered models, for side-by-side figures.

The same net, loss and optimizer as `vae-dist --hidden H --latent d1,d2,...
--activation gated [--prior vamp]` builds (docs/how-it-works.md#the-model):
gated dense layers (h * sigmoid(g)), He-initialized weights, every
log-variance clamped to [-6, 2];
    q(z_L | x):         x -> H[0] .. H[n-1] -> mu, logvar
    q(z_l | x, z_l+1):  [x -> H[0] ; z_l+1 -> H[0]] -> H[1] .. H[n-1] -> mu, logvar
    p(z_l | z_l+1):     z_l+1 -> H[n-1] .. H[0] -> mu, logvar
    p(x | z_1 .. z_L):  [z_1 -> H[n-1] ; ..; z_L -> H[n-1]] -> H[n-2] .. H[0] -> logits
(one layer: the mirrored MLP). With --preset conv-hvae, the gated
convolutional two-level VAE of Tomczak and Welling (VampPrior, 2018) on
28x28x1 images (2,210,861 parameters, 2,602,861 with the VampPrior): gated
convolutions GC(in, out, kernel, stride, padding) = conv * sigmoid(conv),
    q(z2 | x):       GC(1,32,7,1,3) GC(32,32,3,2,1) GC(32,64,5,1,2) GC(64,64,3,2,1)
                     GC(64,6,3,1,1), flattened to 294 -> mu, logvar
    q(z1 | x, z2):   [x -> GC(1,32,3,1,1) GC(32,32,3,2,1) GC(32,64,3,1,1) GC(64,64,3,2,1)
                     GC(64,6,3,1,1) -> 294 ; z2 -> G294] -> G300 -> mu, logvar
    p(z1 | z2):      z2 -> G300 -> G300 -> mu, logvar
    p(x | z1, z2):   [z1 -> G300 ; z2 -> G300] -> G784, as 28x28x1 -> GC(1,64,3,1,1)
                     and three GC(64,64,3,1,1) -> a 1x1 convolution 64 -> 1: logits
(PyTorch's default initialization for the convolutions). Loss per sample: BCE-with-logits summed over
pixels + beta (closed-form KL of each lower layer to its conditional prior,
and of the top to N(0, I); with a VampPrior, the one-draw log q(z_L) -
log p(z_L) of the mixture of the encoder's posteriors at K pseudo-inputs
hardtanh(a_k, 0, 1), a_k ~ N(0.05, 0.01) at the start). Adam.

Throughput only (samples/s over --steps timed steps after --warmup):
    OMP_NUM_THREADS=1 /usr/bin/python3 bench/torch_hvae.py --steps 50 --latent 40,40 --prior vamp
Train on dynamically binarized data, the test set binarized once, and
report the test negative ELBO per epoch:
    OMP_NUM_THREADS=1 /usr/bin/python3 bench/torch_hvae.py --epochs 10 --latent 40,40

Needs Debian's python3-torch, python3-numpy and (for --data) python3-h5py.
"""
import argparse
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_vae import load  # noqa: E402  the same data reader

LV_MIN, LV_MAX = -6.0, 2.0


def he(linear):
    """He-initialized weights (N(0, 2 / fan_in)); PyTorch's default bias."""
    torch.nn.init.normal_(linear.weight, 0.0, math.sqrt(2.0 / linear.in_features))
    return linear


class Gated(torch.nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.h, self.g = he(torch.nn.Linear(n_in, n_out)), he(torch.nn.Linear(n_in, n_out))

    def forward(self, x):
        return self.h(x) * torch.sigmoid(self.g(x))


class Heads(torch.nn.Module):
    def __init__(self, n_in, d):
        super().__init__()
        self.mu, self.logvar = he(torch.nn.Linear(n_in, d)), he(torch.nn.Linear(n_in, d))

    def forward(self, h):
        return self.mu(h), F.hardtanh(self.logvar(h), LV_MIN, LV_MAX)


def chain(widths):
    return torch.nn.Sequential(*[Gated(a, b) for a, b in zip(widths[:-1], widths[1:])])


def gauss_kl(mq, lq, mp, lp):
    """KL(N(mq, e^lq) || N(mp, e^lp)), summed over dimensions and rows."""
    return 0.5 * torch.sum(lp - lq + (torch.exp(lq) + (mq - mp) ** 2) * torch.exp(-lp) - 1.0)


def log_normal(z, mu, lv):
    return -0.5 * (math.log(2 * math.pi) + lv + (z - mu) ** 2 * torch.exp(-lv))


class GatedConv(torch.nn.Module):
    def __init__(self, c_in, c_out, k, stride, pad):
        super().__init__()
        self.h = torch.nn.Conv2d(c_in, c_out, k, stride, pad)
        self.g = torch.nn.Conv2d(c_in, c_out, k, stride, pad)

    def forward(self, x):
        return self.h(x) * torch.sigmoid(self.g(x))


def conv_chain(specs):
    return torch.nn.Sequential(*[GatedConv(*s) for s in specs], torch.nn.Flatten())


class ConvHVAE(torch.nn.Module):
    """The convolutional two-level model (--preset conv-hvae), on 28x28x1."""

    def __init__(self, pseudo=0, d=40):
        super().__init__()
        self.latent = [d, d]
        self.q2 = conv_chain([(1, 32, 7, 1, 3), (32, 32, 3, 2, 1), (32, 64, 5, 1, 2),
                              (64, 64, 3, 2, 1), (64, 6, 3, 1, 1)])
        self.q2_heads = Heads(294, d)
        self.q1_x = conv_chain([(1, 32, 3, 1, 1), (32, 32, 3, 2, 1), (32, 64, 3, 1, 1),
                                (64, 64, 3, 2, 1), (64, 6, 3, 1, 1)])
        self.q1_z, self.q1_joint = Gated(d, 294), Gated(588, 300)
        self.q1_heads = Heads(300, d)
        self.p1, self.p1_heads = chain([d, 300, 300]), Heads(300, d)
        self.dec_z1, self.dec_z2, self.dec_joint = Gated(d, 300), Gated(d, 300), Gated(600, 784)
        self.dec_convs = torch.nn.Sequential(*[GatedConv(*s) for s in [
            (1, 64, 3, 1, 1), (64, 64, 3, 1, 1), (64, 64, 3, 1, 1), (64, 64, 3, 1, 1)]])
        self.out = torch.nn.Conv2d(64, 1, 1)
        self.pseudo = None
        if pseudo:
            self.pseudo = torch.nn.Parameter(torch.empty(pseudo, 784).normal_(0.05, 0.01))

    def top(self, x):
        return self.q2_heads(self.q2(x.view(-1, 1, 28, 28)))

    def forward(self, x, beta=1.0):
        mu, lv = self.top(x)
        z2 = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        kl = top_kl(self, mu, lv, z2)
        hq = torch.cat([self.q1_x(x.view(-1, 1, 28, 28)), self.q1_z(z2)], 1)
        mq, lq = self.q1_heads(self.q1_joint(hq))
        mp, lp = self.p1_heads(self.p1(z2))
        z1 = mq + torch.exp(0.5 * lq) * torch.randn_like(mq)
        kl = kl + gauss_kl(mq, lq, mp, lp)
        h = self.dec_joint(torch.cat([self.dec_z1(z1), self.dec_z2(z2)], 1))
        logits = self.out(self.dec_convs(h.view(-1, 1, 28, 28))).flatten(1)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        return recon, kl


def top_kl(model, mu, lv, z):
    """The top layer's KL: closed form to N(0, I), or the one-draw log q(z) -
    log p(z) of the mixture of the posteriors at the pseudo-inputs."""
    if model.pseudo is None:
        return gauss_kl(mu, lv, torch.zeros_like(mu), torch.zeros_like(lv))
    pm, plv = model.top(F.hardtanh(model.pseudo, 0.0, 1.0))
    lp = log_normal(z[:, None, :], pm[None], plv[None]).sum(-1)
    log_p = torch.logsumexp(lp, 1) - math.log(len(pm))
    return torch.sum(log_normal(z, mu, lv).sum(-1) - log_p)


class HVAE(torch.nn.Module):
    def __init__(self, D, hidden, latent, pseudo=0):
        super().__init__()
        H, L, n = hidden, len(latent), len(hidden)
        self.latent = latent
        self.q_top = chain([D] + H)
        self.q_top_heads = Heads(H[-1], latent[-1])
        self.q_x = torch.nn.ModuleList([Gated(D, H[0]) for _ in range(L - 1)])
        self.q_z = torch.nn.ModuleList([Gated(latent[l + 1], H[0]) for l in range(L - 1)])
        self.q_joint = torch.nn.ModuleList([chain([2 * H[0]] + H[1:]) for _ in range(L - 1)])
        self.q_heads = torch.nn.ModuleList(
            [Heads(H[-1] if n > 1 else 2 * H[0], latent[l]) for l in range(L - 1)])
        self.p = torch.nn.ModuleList(
            [chain([latent[l + 1]] + H[::-1]) for l in range(L - 1)])
        self.p_heads = torch.nn.ModuleList([Heads(H[0], latent[l]) for l in range(L - 1)])
        if L == 1:
            self.dec = chain([latent[0]] + H[::-1])
            self.out = he(torch.nn.Linear(H[0], D))
        else:
            self.dec_z = torch.nn.ModuleList([Gated(d, H[-1]) for d in latent])
            self.dec = chain([L * H[-1]] + H[-2::-1]) if n > 1 else torch.nn.Identity()
            self.out = he(torch.nn.Linear(H[0] if n > 1 else L * H[-1], D))
        self.pseudo = None
        if pseudo:
            self.pseudo = torch.nn.Parameter(torch.empty(pseudo, D).normal_(0.05, 0.01))

    def top(self, x):
        return self.q_top_heads(self.q_top(x))

    def forward(self, x, beta=1.0):
        """Summed reconstruction and KL terms (nats) over the batch."""
        L = len(self.latent)
        mu, lv = self.top(x)
        zs = [None] * L
        zs[-1] = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        kl = top_kl(self, mu, lv, zs[-1])
        for l in range(L - 2, -1, -1):
            hq = torch.cat([self.q_x[l](x), self.q_z[l](zs[l + 1])], 1)
            mq, lq = self.q_heads[l](self.q_joint[l](hq))
            mp, lp = self.p_heads[l](self.p[l](zs[l + 1]))
            zs[l] = mq + torch.exp(0.5 * lq) * torch.randn_like(mq)
            kl = kl + gauss_kl(mq, lq, mp, lp)
        if L == 1:
            logits = self.out(self.dec(zs[0]))
        else:
            logits = self.out(self.dec(torch.cat([f(z) for f, z in zip(self.dec_z, zs)], 1)))
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        return recon, kl


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="HDF5 file with /train/images and /test/images (uint8)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--hidden", default="300,300")
    ap.add_argument("--latent", default="40,40")
    ap.add_argument("--prior", choices=["standard", "vamp"], default="standard")
    ap.add_argument("--pseudo-inputs", type=int, default=500)
    ap.add_argument("--preset", choices=["none", "conv-hvae"], default="none")
    ap.add_argument("--warmup-epochs", type=float, default=0, help="KL warm-up, epochs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=0, help="throughput mode: timed steps")
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, test, _ = load(args.data)
    pseudo = args.pseudo_inputs if args.prior == "vamp" else 0
    if args.preset == "conv-hvae":
        model = ConvHVAE(pseudo, int(args.latent.split(",")[-1]))
    else:
        model = HVAE(train.shape[1], [int(h) for h in args.hidden.split(",")],
                     [int(d) for d in args.latent.split(",")], pseudo)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    def step(x, beta):
        opt.zero_grad()
        recon, kl = model(x, beta)
        ((recon + beta * kl) / len(x)).backward()
        opt.step()
        return recon.item(), kl.item()

    if args.steps:
        gen = torch.Generator().manual_seed(args.seed)
        batches = [torch.bernoulli(train[torch.randint(len(train), (args.batch,), generator=gen)],
                                   generator=gen) for _ in range(16)]
        for i in range(args.warmup):
            step(batches[i % 16], 1.0)
        t0 = time.perf_counter()
        for i in range(args.steps):
            step(batches[i % 16], 1.0)
        print(f"samples_per_s={args.steps * args.batch / (time.perf_counter() - t0):.1f}")
        return

    gen = torch.Generator().manual_seed(args.seed + 1)
    test = torch.bernoulli(test, generator=gen)  # binarized once, with a fixed seed
    n_steps, done = len(train) // args.batch, 0
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(len(train))
        t0 = time.perf_counter()
        for s in range(n_steps):
            done += 1
            beta = min(1.0, done / (args.warmup_epochs * n_steps)) if args.warmup_epochs else 1.0
            step(torch.bernoulli(train[perm[s * args.batch:(s + 1) * args.batch]]), beta)
        with torch.no_grad():
            recon = kl = 0.0
            for i in range(0, len(test), 500):
                r, k = model(test[i:i + 500])
                recon, kl = recon + r.item(), kl + k.item()
        n = len(test)
        print("epoch %d test %.2f = %.2f + %.2f  %.1f s" %
              (epoch, (recon + kl) / n, recon / n, kl / n, time.perf_counter() - t0), flush=True)


if __name__ == "__main__":
    main()
