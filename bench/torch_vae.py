#!/usr/bin/python3
"""The PyTorch peer of vae-dist, for side-by-side figures.

The same model, loss and optimizer as vae-dist: an encoder (relu) of
--conv 4x4 stride-2 padding-1 convolutions and --hidden dense layers to mu
and logvar = log sigma^2, z = mu + exp(logvar/2) * eps, the mirrored decoder
(dense layers, a dense layer to the last convolution's shape, transposed
convolutions) to Bernoulli logits, loss per sample = BCE-with-logits summed
over pixels + the closed-form KL; Adam; uint8 pixels scaled to [0, 1], float
ones taken as they are. Samples (N, H, W, C) with C <= 4 are colour images,
channels last as vae-dist reads them (the convolutions see them as (C, H, W));
(N, H, W) and square (N, D) ones have one channel. Like vae-dist, each epoch
takes floor(N / batch) batches of a fresh permutation (the remainder is
dropped).

Train and report the test negative ELBO per epoch:
    OMP_NUM_THREADS=1 /usr/bin/python3 bench/torch_vae.py --epochs 10 --threads 1
Throughput only (samples/s over --steps timed steps after --warmup):
    /usr/bin/python3 bench/torch_vae.py --steps 200 --warmup 20 --hidden 1024,1024 --latent 64 --batch 512
    /usr/bin/python3 bench/torch_vae.py --steps 50 --conv 32,64 --hidden 256 --latent 20
Colour images, and the decoder's means for z = mu of the test set (the
reconstructions, shaped like the stored samples) in an .npy file:
    /usr/bin/python3 bench/torch_vae.py --data shapes.h5 --conv 32,64 --epochs 10 --recon rec.npy
Data parallel (DistributedDataParallel over gloo), ranks started by hand
since Debian's torchrun is broken on Python 3.11; --batch stays global:
    for r in 0 1; do RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 \\
        /usr/bin/python3 bench/torch_vae.py --steps 200 & done; wait

Needs Debian's python3-torch, python3-numpy and (for --data) python3-h5py.
"""
import argparse
import gzip
import os
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

FASHION = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """An unsigned-byte IDX file (gzip or plain) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        zero, dtype, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype != 0x08:
            raise ValueError(f"{path}: not an unsigned-byte IDX file")
        dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def load(path):
    """(train, test, (side, channels)): float32 tensors of shape (N, D) in
    [0, 1], channels last, and the images' geometry."""
    if path:
        import h5py
        with h5py.File(path, "r") as f:
            train, test = f["/train/images"][...], f["/test/images"][...]
    else:
        train = read_idx(f"{FASHION}/train-images-idx3-ubyte.gz")
        test = read_idx(f"{FASHION}/t10k-images-idx3-ubyte.gz")
    channels = train.shape[3] if train.ndim == 4 and train.shape[3] <= 4 else 1
    side = int(round((train[0].size // channels) ** 0.5))

    def flat(a):
        scale = 255.0 if a.dtype == np.uint8 else 1.0
        return torch.from_numpy(a.reshape(len(a), -1).astype(np.float32) / scale)
    return flat(train), flat(test), (side, channels)


class VAE(torch.nn.Module):
    def __init__(self, n_input, hidden, latent, conv=(), side=28, channels=1):
        super().__init__()
        chans = [channels] + list(conv)
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(chans[:-1], chans[1:]))
        self.side, self.cshape = side, (chans[-1], side >> len(conv), side >> len(conv))
        self.channels = channels
        flat = chans[-1] * (side >> len(conv)) ** 2 if conv else n_input
        widths = [flat] + hidden
        self.encoder = torch.nn.ModuleList(
            torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.mu = torch.nn.Linear(hidden[-1], latent)
        self.logvar = torch.nn.Linear(hidden[-1], latent)
        back = [latent] + hidden[::-1]
        self.decoder = torch.nn.ModuleList(
            torch.nn.Linear(a, b) for a, b in zip(back[:-1], back[1:]))
        self.out = torch.nn.Linear(hidden[0], flat)
        self.tconvs = torch.nn.ModuleList(
            torch.nn.ConvTranspose2d(b, a, 4, 2, 1) for a, b in zip(chans[-2::-1], chans[:0:-1]))

    def encode(self, x):
        """mu and logvar of rows x (channels last)."""
        h = x
        if self.convs:
            h = h.view(-1, self.side, self.side, self.channels).permute(0, 3, 1, 2)
            for layer in self.convs:
                h = F.relu(layer(h))
            h = h.flatten(1)
        for layer in self.encoder:
            h = F.relu(layer(h))
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        """The logits of p(x | z), rows channels last."""
        for layer in self.decoder:
            z = F.relu(layer(z))
        logits = self.out(z)
        if self.tconvs:
            logits = F.relu(logits).view(-1, *self.cshape)
            for i, layer in enumerate(self.tconvs):
                logits = layer(logits)
                if i + 1 < len(self.tconvs):
                    logits = F.relu(logits)
            logits = logits.permute(0, 2, 3, 1).flatten(1)
        return logits

    def forward(self, x):
        """Summed reconstruction and KL terms (nats) over the batch."""
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.decode(z)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = 0.5 * torch.sum(mu * mu + torch.exp(logvar) - logvar - 1.0)
        return recon, kl


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="HDF5 file with /train/images and /test/images (uint8)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128, help="global batch")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", default="400")
    ap.add_argument("--conv", default="", help="convolutions' channels, e.g. 32,64")
    ap.add_argument("--latent", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=0, help="throughput mode: timed steps")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--csv", help="append per-epoch rows to this file")
    ap.add_argument("--recon", help="write the test set's reconstructions (means for z = mu) "
                    "to this .npy file at the end")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    train, test, (side, channels) = load(args.data)
    hidden = [int(h) for h in args.hidden.split(",")]
    conv = [int(c) for c in args.conv.split(",")] if args.conv else []
    model = VAE(train.shape[1], hidden, args.latent, conv, side, channels)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    local = args.batch // world

    def step(x):
        opt.zero_grad()
        recon, kl = net(x)
        # mean over the global batch: DDP averages gradients over ranks
        ((recon + kl) / local).backward()
        opt.step()
        return recon.item(), kl.item()

    if args.steps:
        gen = torch.Generator().manual_seed(args.seed + rank)
        batches = [train[torch.randint(len(train), (local,), generator=gen)]
                   for _ in range(16)]
        for i in range(args.warmup):
            step(batches[i % 16])
        if world > 1:
            torch.distributed.barrier()
        t0 = time.perf_counter()
        for i in range(args.steps):
            step(batches[i % 16])
        if world > 1:
            torch.distributed.barrier()
        dt = time.perf_counter() - t0
        if rank == 0:
            print(f"samples_per_s={args.steps * args.batch / dt:.1f}")
        return

    n_steps = len(train) // args.batch
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(len(train))
        t0, total, count = time.perf_counter(), 0.0, 0
        for s in range(n_steps):
            idx = perm[s * args.batch + rank * local: s * args.batch + (rank + 1) * local]
            recon, kl = step(train[idx])
            total, count = total + recon + kl, count + local
        dt = time.perf_counter() - t0
        with torch.no_grad():
            recon, kl = 0.0, 0.0
            for i in range(0, len(test), 1000):
                r, k = model(test[i:i + 1000])
                recon, kl = recon + r.item(), kl + k.item()
        n = len(test)
        if rank == 0:
            row = (epoch, total / count, (recon + kl) / n, recon / n, kl / n,
                   count * world / dt)
            print("epoch %d train %.2f test %.2f = %.2f + %.2f  %.0f samples/s" % row,
                  flush=True)
            if args.csv:
                with open(args.csv, "a") as f:
                    f.write(",".join(str(v) for v in row) + "\n")
    if args.recon and rank == 0:
        with torch.no_grad():
            np.save(args.recon, torch.sigmoid(model.decode(model.encode(test)[0])).numpy())


if __name__ == "__main__":
    main()
