#!/usr/bin/python3
"""Colour images: baselines of a test set, and how colourful reconstructions are.

    /usr/bin/python3 bench/colour.py DATA.h5                 the baselines
    /usr/bin/python3 bench/colour.py DATA.h5 RUN_OR_CKPT     + a vae-dist model's reconstructions
    /usr/bin/python3 bench/colour.py DATA.h5 REC.npy         + reconstructions saved by
                                                             bench/torch_vae.py --recon

DATA.h5 holds /test/images, (N, H, W, 3) channels last, uint8 (scaled by
1/255) or floats in [0, 1]. All losses are Bernoulli negative
log-likelihoods in nats per image, summed over the H W 3 values, as
vae-dist's reconstruction term:

  entropy floor    the loss of predicting each value by itself (no model
                   of values in (0, 1) does better under this likelihood);
  mean colour      predicting every pixel of an image by that image's mean
                   colour (three numbers per image, known to the baseline
                   for free);
  mean grey        the same with the image's mean value in all channels;
  train mean       the training set's mean image, for every test image.

The colour spread of a set of images is the mean over images and pixels of
the pixel's chroma, max(r, g, b) - min(r, g, b), on the 0-255 scale: 0 for
grey pixels. A model's reconstructions are the decoder's means for z = mu
(vae-dist's through jobs/decode.py, which follows the checkpoint's layers
in numpy); their line gives their colour spread and their reconstruction
loss.
"""
import os
import sys

import h5py
import numpy as np


def bernoulli_nll(x, p):
    """Per-image -log p(x) of values x under Bernoulli means p."""
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return -(x * np.log(p) + (1 - x) * np.log1p(-p)).reshape(len(x), -1).sum(1)


def chroma(x):
    """Mean per-pixel max - min channel, 0-255 scale."""
    x = x.reshape(len(x), -1, 3)
    return float((x.max(-1) - x.min(-1)).mean() * 255)


def read(path, name):
    with h5py.File(path, "r") as f:
        a = f[name][...]
    return a.astype(np.float64) / (255.0 if a.dtype == np.uint8 else 1.0)


def reconstruct(ckpt, x):
    """A vae-dist model's means for z = mu of rows x (channels last)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "jobs"))
    import decode
    model, graph, params = decode.load(ckpt)
    if len(graph["levels"]) != 1:
        sys.exit("%s: a model of one stochastic layer, please" % ckpt)
    d = graph["levels"][0]["d"]
    mu = decode.encode(model, graph, params, x.astype(np.float32))[:, :d]
    return decode.decode(model, graph, params, mu)


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__.strip().splitlines()[2].strip())
    x = read(argv[1], "/test/images")
    if x.ndim != 4 or x.shape[3] != 3:
        sys.exit("%s: /test/images is %s, not (N, H, W, 3)" % (argv[1], x.shape))
    n = len(x)
    pix = x.reshape(n, -1, 3)
    colour = np.broadcast_to(pix.mean(1, keepdims=True), pix.shape).reshape(x.shape)
    grey = np.broadcast_to(pix.mean((1, 2))[:, None, None], pix.shape).reshape(x.shape)
    train_mean = np.broadcast_to(read(argv[1], "/train/images").mean(0), x.shape)
    print("test set: %d images %s, colour spread %.1f" % (n, "x".join(map(str, x.shape[1:])), chroma(x)))
    print("entropy floor %.1f  mean colour %.1f  mean grey %.1f  train mean %.1f" % (
        bernoulli_nll(x, x).mean(), bernoulli_nll(x, colour).mean(),
        bernoulli_nll(x, grey).mean(), bernoulli_nll(x, train_mean).mean()))
    if len(argv) == 3:
        rec = np.load(argv[2]) if argv[2].endswith(".npy") else reconstruct(argv[2], x)
        rec = rec.reshape(x.shape)
        print("reconstructions (z = mu): colour spread %.1f, reconstruction loss %.1f" % (
            chroma(rec), bernoulli_nll(x, rec).mean()))


if __name__ == "__main__":
    main(sys.argv)
