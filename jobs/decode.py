#!/usr/bin/env python3
"""Decode latent vectors with a vae-dist checkpoint, using only h5py and numpy.

    python3 jobs/decode.py CKPT.h5 Z.h5 [OUT.npy]

Z.h5 holds /z, shaped (n, latent), as `vae-dist sample` writes it. The
decoded means, shaped like the training samples, go to OUT.npy; when Z.h5
also holds /samples (vae-dist's own decoding of the same z), the largest
difference is printed. Needs python3-h5py (Debian), which brings numpy.
"""
import sys

import h5py
import numpy as np


def text(v):
    """An HDF5 string attribute as str (h5py gives str or bytes)."""
    return v.decode() if isinstance(v, bytes) else str(v)


def load(path):
    """The /model attributes and the /params tensors of a checkpoint."""
    with h5py.File(path, "r") as f:
        model = dict(f["model"].attrs)
        params = {name: f["params"][name][()] for name in f["params"]}
    return model, params


def decode(model, params, z):
    """Means of p(x|z) for latent rows z (n, latent): the decoder mirrors the
    encoder's hidden widths, each linear layer is x @ W.T + b (W is (out, in)),
    hidden layers use the model's activation, and the last layer gives
    Bernoulli logits (mean: their sigmoid) or the Gaussian mean itself."""
    act = text(model.get("activation", "relu"))
    likelihood = text(model.get("likelihood", "bernoulli"))
    n_hidden = len(np.atleast_1d(model["hidden"]))
    h = np.asarray(z, dtype=np.float32)
    for layer in range(n_hidden + 1):
        w = params["decoder.%d.weight" % layer]
        b = params["decoder.%d.bias" % layer]
        h = h @ w.T + b
        if layer < n_hidden:
            h = np.tanh(h) if act == "tanh" else np.maximum(h, 0)
    mean = h if likelihood == "gaussian" else 1 / (1 + np.exp(-h))
    shape = tuple(int(d) for d in np.atleast_1d(model["input_shape"]))
    return mean.reshape((len(mean),) + shape)


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__.strip().splitlines()[2].strip())
    model, params = load(argv[1])
    with h5py.File(argv[2], "r") as f:
        z = f["z"][()]
        theirs = f["samples"][()] if "samples" in f else None
    images = decode(model, params, z)
    print("decoded %d latent vectors to %s images" % (len(z), "x".join(map(str, images.shape[1:]))))
    if theirs is not None:
        print("max |difference| from /samples: %.3g" % np.abs(images - theirs).max())
    if len(argv) == 4:
        np.save(argv[3], images)


if __name__ == "__main__":
    main(sys.argv)
