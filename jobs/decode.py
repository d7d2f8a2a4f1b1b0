#!/usr/bin/env python3
"""Decode latent vectors with a vae-dist checkpoint, using only h5py and numpy.

    python3 jobs/decode.py CKPT Z.h5 [OUT.npy]
    python3 jobs/decode.py --encode CKPT DATA.h5 DATASET [ENCODED.h5 | OUT.npy]

CKPT is a checkpoint file or a run directory (its "latest", else its newest
ckpt-*.h5). Z.h5 holds /z, shaped (n, d), the top stochastic layer's values,
as `vae-dist sample` writes it; with several stochastic layers, the lower
ones' /z1, /z2, ... when present (else each is its conditional prior's
mean). The decoded means, shaped like the training samples as stored, go to
OUT.npy; when Z.h5 also holds /samples (vae-dist's own decoding of the same
z), the largest difference is printed. With --encode, the rows of
DATA.h5:DATASET go through the encoder instead, every layer at its
posterior's mean, and OUT.npy gets each layer's (mu | logvar), z_1's first,
shaped (n, 2 d_1 + 2 d_2 + ...); given ENCODED.h5 (as `vae-dist encode`
writes it: /mu and /logvar, or /mu1, /logvar1, ... by layer) instead, the
largest difference from it is printed. Needs python3-h5py (Debian), which
brings numpy.

The network is the graph the checkpoint's /model/graph attribute describes
(docs/checkpoint-format.md): a list of nodes, each the input, a layer reading
the concatenation of earlier nodes' outputs, or a stochastic layer's sample.
Images are channels last (h, w, c); a dense layer is x @ W.T + b with W (out,
in); a gated one (x @ Wh.T + bh) * sigmoid(x @ Wg.T + bg); heads give
[mu | logvar], logvar clamped where the graph says; a convolution's weights
are (c_out, k, k, c_in) (a gated one's two such, h and gate), a 4x4
stride-2 transposed one's (c_in, 4, 4, c_out); an upsampling repeats each
pixel; a layer whose out_shape is an image hands it on as one. Checkpoints
older than the graph (format 3 and before) get the graph their options
describe. A missing file or dataset, or one of another shape, is one line
on stderr and exit 1.
"""
import json
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
    """The /model attributes, the graph, and the /params tensors of a checkpoint."""
    with h5py.File(checkpoint(path), "r") as f:
        model = dict(f["model"].attrs)
        params = {name: f["params"][name][()] for name in f["params"]}
    graph = json.loads(text(model["graph"])) if "graph" in model else legacy_graph(model)
    return model, graph, params


def legacy_graph(model):
    """The graph a format 1-3 checkpoint's options describe: one stochastic
    layer, the encoder (convolutions, then dense layers) and heads, the
    mirrored decoder."""
    hidden = [int(v) for v in np.atleast_1d(model["hidden"])]
    conv = [int(c) for c in np.atleast_1d(model["conv"])] if "conv" in model else []
    image = [int(v) for v in model["image"]] if "image" in model else None
    d, n_in = int(model["n_latent"]), int(model["n_input"])
    act = text(model.get("activation", "relu"))
    nodes = [{"type": "input", "size": n_in}]

    def layer(kind, name, out_shape, act, in_shape=None):
        nodes.append({"type": "layer", "kind": kind, "name": name, "in": [len(nodes) - 1],
                      "act": act, "clamp": [0, 0], "in_shape": in_shape,
                      "out_shape": out_shape})

    h, w, c = image if image else (1, 1, n_in)
    for i, ch in enumerate(conv):
        layer("conv", "encoder.%d" % i, [h // 2, w // 2, ch], act, [h, w, c])
        h, w, c = h // 2, w // 2, ch
    for i, width in enumerate(hidden):
        layer("dense", "encoder.%d" % (len(conv) + i), [1, 1, width], act)
    layer("heads", "", [1, 1, 2 * d], "none")
    q = len(nodes) - 1
    nodes.append({"type": "sample", "level": 0, "size": d})
    for i, width in enumerate(reversed(hidden)):
        layer("dense", "decoder.%d" % i, [1, 1, width], act)
    k = len(hidden)
    if not conv:
        layer("dense", "decoder.%d" % k, [1, 1, n_in], "none")
    else:
        layer("dense", "decoder.%d" % k, [h, w, c], act)
        for i in range(len(conv) - 1, -1, -1):
            c_out = conv[i - 1] if i else image[2]
            k += 1
            layer("tconv", "decoder.%d" % k, [2 * h, 2 * w, c_out], act if i else "none",
                  [h, w, c])
            h, w, c = 2 * h, 2 * w, c_out
    for n in nodes:
        if n["type"] == "layer":
            n["tensors"] = tensor_names(n)
    return {"nodes": nodes, "levels": [{"d": d, "q": q, "p": -1, "z": q + 1}],
            "out": len(nodes) - 1, "likelihood": text(model.get("likelihood", "bernoulli"))}


def tensor_names(node):
    prefix = node["name"] + "." if node["name"] else ""
    if node["kind"] == "heads":
        parts = ["mu.weight", "logvar.weight", "mu.bias", "logvar.bias"]
    elif node["kind"] in ("gated", "gated_conv2d"):
        parts = ["h.weight", "gate.weight", "h.bias", "gate.bias"]
    else:
        parts = ["weight", "bias"]
    return [prefix + p for p in parts]


def activation(name, h):
    if name == "tanh":
        return np.tanh(h)
    if name == "relu":
        return np.maximum(h, 0)
    return h


def conv(x, w, b):
    """4x4 stride-2 padding-1 convolution: x (n, h, w, ci), w (co, 4, 4, ci)."""
    n, h, wd, _ = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.broadcast_to(b, (n, h // 2, wd // 2, len(b))).copy()
    for ky in range(4):
        for kx in range(4):
            out += xp[:, ky:ky + h:2, kx:kx + wd:2, :] @ w[:, ky, kx, :].T
    return out


def conv2d(x, w, b, stride, pad):
    """A convolution of any window: x (n, h, w, ci) zero-padded by pad, w (co,
    k, k, ci), every stride-th window: PyTorch's Conv2d(ci, co, k, stride,
    pad) with its weight permuted (co, ci, k, k) -> (co, k, k, ci)."""
    n, h, wd, _ = x.shape
    k = w.shape[1]
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = np.broadcast_to(b, (n, oh, ow, len(b))).astype(np.float32)
    for ky in range(k):
        for kx in range(k):
            win = xp[:, ky:ky + stride * (oh - 1) + 1:stride, kx:kx + stride * (ow - 1) + 1:stride, :]
            out = out + win @ w[:, ky, kx, :].T
    return out


def tconv(x, w, b):
    """Its transpose: x (n, h, w, ci), w (ci, 4, 4, co) -> (n, 2h, 2w, co)."""
    n, h, wd, _ = x.shape
    out = np.zeros((n, 2 * h + 2, 2 * wd + 2, w.shape[3]), dtype=np.float32)
    for ky in range(4):
        for kx in range(4):
            out[:, ky:ky + 2 * h:2, kx:kx + 2 * wd:2, :] += x @ w[:, ky, kx, :]
    return out[:, 1:-1, 1:-1, :] + b


def run_layer(node, params, x):
    """A layer node on its gathered input x (n, values): its output (n, values)."""
    t = [params[name] for name in node["tensors"]]
    kind, n = node["kind"], len(x)
    if kind == "dense":
        y = x @ t[0].T + t[1]
    elif kind == "heads":
        y = x @ np.concatenate([t[0], t[1]]).T + np.concatenate([t[2], t[3]])
        lo, hi = node["clamp"]
        if hi > lo:
            d = y.shape[1] // 2
            y[:, d:] = np.clip(y[:, d:], lo, hi)
    elif kind == "gated":
        h = x @ t[0].T + t[2]
        g = x @ t[1].T + t[3]
        y = h / (1 + np.exp(-g))
    elif kind in ("conv", "tconv"):
        image = x.reshape((n,) + tuple(node["in_shape"]))
        y = (conv if kind == "conv" else tconv)(image, t[0], t[1]).reshape(n, -1)
    elif kind in ("conv2d", "gated_conv2d"):
        image = x.reshape((n,) + tuple(node["in_shape"]))
        s, p = node["stride"], node["padding"]
        y = conv2d(image, t[0], t[2 if kind == "gated_conv2d" else 1], s, p)
        if kind == "gated_conv2d":
            y = y / (1 + np.exp(-conv2d(image, t[1], t[3], s, p)))
        y = y.reshape(n, -1)
    elif kind == "upsample":  # nearest: each pixel repeated factor x factor times
        f = node["factor"]
        image = x.reshape((n,) + tuple(node["in_shape"]))
        y = np.repeat(np.repeat(image, f, 1), f, 2).reshape(n, -1)
    else:
        sys.exit("this decode.py does not know layers of kind '%s'" % kind)
    return activation(node["act"], y).astype(np.float32)


def forward(graph, params, x, upto):
    """Nodes [1, upto) on input x (n, D), each sample at its posterior's mean.
    Returns every node's output."""
    nodes, levels = graph["nodes"], graph["levels"]
    out = {0: x}
    for i in range(1, upto):
        node = nodes[i]
        if node["type"] == "sample":
            d = levels[node["level"]]["d"]
            out[i] = out[levels[node["level"]]["q"]][:, :d]
            continue
        x_in = np.concatenate([out[j].reshape(len(out[j]), -1) for j in node["in"]], axis=1)
        out[i] = run_layer(node, params, x_in)
    return out


def decode(model, graph, params, z, lower=None):
    """Means of p(x | z) for top-layer rows z (n, d_L) (and the lower layers'
    values lower[level], or their conditional priors' means), shaped like the
    training samples as stored; a Bernoulli model's last layer gives logits
    (mean: their sigmoid), a Gaussian's the mean itself, a logistic's the
    mean before its clamp to [0, 1]."""
    levels, nodes = graph["levels"], graph["nodes"]
    top = len(levels) - 1
    z_given = dict(lower or {})
    z_given[top] = np.asarray(z, dtype=np.float32)
    first = levels[0]["z"] + 1  # the generative path starts after z_1's sample
    out = {}
    for lv, zl in z_given.items():
        out[levels[lv]["z"]] = zl
    prior_of = {lv["p"]: i for i, lv in enumerate(levels) if lv["p"] >= 0}
    for i in range(first, len(nodes)):
        node = nodes[i]
        x_in = np.concatenate([out[j].reshape(len(out[j]), -1) for j in node["in"]], axis=1)
        out[i] = run_layer(node, params, x_in)
        if i in prior_of and prior_of[i] not in z_given:
            out[levels[prior_of[i]]["z"]] = out[i][:, :levels[prior_of[i]]["d"]]
    h = out[graph["out"]]
    lik = graph.get("likelihood", "bernoulli")
    if lik == "gaussian":
        mean = h
    elif lik == "logistic":  # the discretized logistic's mean, in [0, 1]
        mean = np.clip(h, 0.0, 1.0)
    else:
        mean = 1 / (1 + np.exp(-h))
    if text(model.get("layout", "hwc")) == "chw":  # back to channels first, as stored
        image = tuple(int(v) for v in model["image"])
        mean = mean.reshape((len(mean),) + image).transpose(0, 3, 1, 2)
    shape = tuple(int(d) for d in np.atleast_1d(model["input_shape"]))
    return mean.reshape((len(mean),) + shape)


def encode(model, graph, params, x):
    """Every layer's (mu | logvar), z_1's first, each given the means of the
    layers above it, for rows x shaped like the stored samples (uint8 scaled
    by 1/255)."""
    x = np.asarray(x)
    h = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32)
    h = h.reshape(len(h), -1)
    if text(model.get("layout", "hwc")) == "chw":  # to channels last
        image = tuple(int(v) for v in model["image"])
        h = h.reshape((len(h), image[2], image[0], image[1])).transpose(0, 2, 3, 1)
        h = h.reshape(len(h), -1)
    levels = graph["levels"]
    out = forward(graph, params, h, levels[0]["z"] + 1)
    return np.concatenate([out[lv["q"]] for lv in levels], axis=1)


def main(argv):
    if len(argv) >= 2 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return
    if len(argv) >= 2 and argv[1] == "--encode":
        if len(argv) not in (5, 6):
            sys.exit(__doc__.strip().splitlines()[3].strip())
        model, graph, params = load(argv[2])
        with h5py.File(argv[3], "r") as f:
            x = f[argv[4]][()]
        out = encode(model, graph, params, x)
        sizes = [lv["d"] for lv in graph["levels"]]
        print("encoded %d rows to the means and log-variances of %s latent dimensions" %
              (len(out), "+".join(map(str, sizes))))
        if len(argv) == 6 and argv[5].endswith(".h5"):
            with h5py.File(argv[5], "r") as f:
                if len(sizes) == 1:
                    theirs = np.concatenate([f["mu"][()], f["logvar"][()]], axis=1)
                else:
                    theirs = np.concatenate([np.concatenate([f["mu%d" % (i + 1)][()],
                                                             f["logvar%d" % (i + 1)][()]], axis=1)
                                             for i in range(len(sizes))], axis=1)
            if theirs.shape != out.shape:
                sys.exit("%s holds %s, the encoder gives %s" % (argv[5], theirs.shape, out.shape))
            print("max |difference| from the encoded file: %.3g" % np.abs(out - theirs).max())
        elif len(argv) == 6:
            np.save(argv[5], out)
        return
    if len(argv) not in (3, 4):
        sys.exit(__doc__.strip().splitlines()[2].strip())
    model, graph, params = load(argv[1])
    with h5py.File(argv[2], "r") as f:
        z = f["z"][()]
        lower = {i: f["z%d" % (i + 1)][()] for i in range(len(graph["levels"]) - 1)
                 if "z%d" % (i + 1) in f}
        theirs = f["samples"][()] if "samples" in f else None
    decoded = decode(model, graph, params, z, lower)
    what = "images" if "image" in model else "samples"
    print("decoded %d latent vectors to %s of %s" %
          (len(z), what, "x".join(map(str, decoded.shape[1:]))))
    if theirs is not None:
        print("max |difference| from /samples: %.3g" % np.abs(decoded - theirs).max())
    if len(argv) == 4:
        np.save(argv[3], decoded)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except (OSError, KeyError, ValueError) as e:  # a file, dataset or shape that is not there
        sys.exit("decode.py: %s" % e)
