#!/usr/bin/env python3
"""Decode latent vectors with a vae-dist checkpoint, using only h5py and numpy.

    python3 jobs/decode.py CKPT Z.h5 [OUT.npy]
    python3 jobs/decode.py --encode CKPT DATA.h5 DATASET [ENCODED.h5 | OUT.npy]

CKPT is a checkpoint file or a run directory (its "latest", else its newest
ckpt-*.h5). Z.h5 holds /z, shaped (n, latent), as `vae-dist sample` writes
it. The decoded means, shaped like the training samples as stored, go to
OUT.npy; when Z.h5 also holds /samples (vae-dist's own decoding of the same
z), the largest difference is printed. With --encode, the rows of
DATA.h5:DATASET go through the encoder instead, and OUT.npy gets their
(mu | logvar), shaped (n, 2 latent); given ENCODED.h5 (as `vae-dist encode`
writes it, /mu and /logvar of the same rows) instead, the largest
difference from it is printed. Needs
python3-h5py (Debian), which brings numpy.

The layers, as vae-dist builds them (docs/checkpoint-format.md): images are
channels last (h, w, c); a 4x4 stride-2 padding-1 convolution has weights
(c_out, 4, 4, c_in) and its transpose (c_in, 4, 4, c_out); a dense layer is
x @ W.T + b with W (out, in); the model's activation follows every layer but
the heads (mu | logvar) and the last one.
"""
import os
import sys

import h5py
import numpy as np


def text(v):
    """An HDF5 string attribute as str (h5py gives str or bytes)."""
    return v.decode() if isinstance(v, bytes) else str(v)


def checkpoint(path):
    """A checkpoint file, a run's "latest" or "best" file (the checkpoint it
    names, beside it), or a run directory's newest checkpoint."""
    if os.path.basename(path) in ("latest", "best") and os.path.isfile(path):
        with open(path) as f:
            return os.path.join(os.path.dirname(path), f.read().strip())
    if not os.path.isdir(path):
        return path
    latest = os.path.join(path, "latest")
    if os.path.exists(latest):
        with open(latest) as f:
            name = f.read().strip()
        if name and "/" not in name:
            return os.path.join(path, name)
    names = sorted(n for n in os.listdir(path) if n.startswith("ckpt-") and n.endswith(".h5"))
    if not names:
        sys.exit("%s holds no checkpoint (ckpt-*.h5)" % path)
    return os.path.join(path, names[-1])


def load(path):
    """The /model attributes and the /params tensors of a checkpoint."""
    with h5py.File(checkpoint(path), "r") as f:
        model = dict(f["model"].attrs)
        params = {name: f["params"][name][()] for name in f["params"]}
    return model, params


def activation(model, h):
    return np.tanh(h) if text(model.get("activation", "relu")) == "tanh" else np.maximum(h, 0)


def conv(x, w, b):
    """4x4 stride-2 padding-1 convolution: x (n, h, w, ci), w (co, 4, 4, ci)."""
    n, h, wd, _ = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.broadcast_to(b, (n, h // 2, wd // 2, len(b))).copy()
    for ky in range(4):
        for kx in range(4):
            out += xp[:, ky:ky + h:2, kx:kx + wd:2, :] @ w[:, ky, kx, :].T
    return out


def tconv(x, w, b):
    """Its transpose: x (n, h, w, ci), w (ci, 4, 4, co) -> (n, 2h, 2w, co)."""
    n, h, wd, _ = x.shape
    out = np.zeros((n, 2 * h + 2, 2 * wd + 2, w.shape[3]), dtype=np.float32)
    for ky in range(4):
        for kx in range(4):
            out[:, ky:ky + 2 * h:2, kx:kx + 2 * wd:2, :] += x @ w[:, ky, kx, :]
    return out[:, 1:-1, 1:-1, :] + b


def shapes(model):
    """The convolutions' channels, the input image (h, w, c) or None."""
    channels = [int(c) for c in np.atleast_1d(model["conv"])] if "conv" in model else []
    image = tuple(int(v) for v in model["image"]) if "image" in model else None
    return channels, image


def decode(model, params, z):
    """Means of p(x|z) for latent rows z (n, latent), shaped like the
    training samples as stored; a Bernoulli model's last layer gives logits
    (mean: their sigmoid), a Gaussian's the mean itself."""
    channels, image = shapes(model)
    n_hidden = len(np.atleast_1d(model["hidden"]))
    h = np.asarray(z, dtype=np.float32)
    last = n_hidden + len(channels)  # the layer that gives the likelihood's parameters
    for layer in range(last + 1):
        w, b = params["decoder.%d.weight" % layer], params["decoder.%d.bias" % layer]
        if layer <= n_hidden:
            h = h @ w.T + b
            if layer == n_hidden and channels:  # to the last convolution's (h, w, c)
                side = (image[0] >> len(channels), image[1] >> len(channels))
                h = h.reshape((len(h),) + side + (channels[-1],))
        else:
            h = tconv(h, w, b)
        if layer < last:
            h = activation(model, h)
    mean = h if text(model.get("likelihood", "bernoulli")) == "gaussian" else 1 / (1 + np.exp(-h))
    if text(model.get("layout", "hwc")) == "chw":  # back to channels first, as stored
        mean = mean.reshape((len(mean),) + image).transpose(0, 3, 1, 2)
    shape = tuple(int(d) for d in np.atleast_1d(model["input_shape"]))
    return mean.reshape((len(mean),) + shape)


def encode(model, params, x):
    """(mu | logvar), (n, 2 latent), of rows x shaped like the stored samples
    (uint8 scaled by 1/255)."""
    channels, image = shapes(model)
    x = np.asarray(x)
    h = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32)
    h = h.reshape(len(h), -1)
    if text(model.get("layout", "hwc")) == "chw":  # to channels last
        h = h.reshape((len(h), image[2], image[0], image[1])).transpose(0, 2, 3, 1)
    if channels:
        h = h.reshape((len(h),) + image)
        for layer in range(len(channels)):
            h = activation(model, conv(h, params["encoder.%d.weight" % layer],
                                       params["encoder.%d.bias" % layer]))
        h = h.reshape(len(h), -1)
    for layer in range(len(channels), len(channels) + len(np.atleast_1d(model["hidden"]))):
        h = activation(model, h @ params["encoder.%d.weight" % layer].T +
                       params["encoder.%d.bias" % layer])
    w = np.concatenate([params["mu.weight"], params["logvar.weight"]])
    return h @ w.T + np.concatenate([params["mu.bias"], params["logvar.bias"]])


def main(argv):
    if len(argv) >= 2 and argv[1] == "--encode":
        if len(argv) not in (5, 6):
            sys.exit(__doc__.strip().splitlines()[3].strip())
        model, params = load(argv[2])
        with h5py.File(argv[3], "r") as f:
            x = f[argv[4]][()]
        out = encode(model, params, x)
        print("encoded %d rows to %d latent means and log-variances" % (len(out), out.shape[1] // 2))
        if len(argv) == 6 and argv[5].endswith(".h5"):
            with h5py.File(argv[5], "r") as f:
                theirs = np.concatenate([f["mu"][()], f["logvar"][()]], axis=1)
            if theirs.shape != out.shape:
                sys.exit("%s holds %s, the encoder gives %s" % (argv[5], theirs.shape, out.shape))
            print("max |difference| from /mu, /logvar: %.3g" % np.abs(out - theirs).max())
        elif len(argv) == 6:
            np.save(argv[5], out)
        return
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
