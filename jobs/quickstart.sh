#!/bin/sh
# quickstart.sh — the README's first command: install the packages, build
# and install vae-dist, import Fashion-MNIST and train on it with 2 ranks.
# Leaves checkpoints, metrics and figures in runs/fashion-mnist/.
set -eu
cd "$(dirname "$0")/.."
sh jobs/setup.sh

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO make install >/dev/null
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# The default data file (README, "Where things go"); training would also
# import it on first use.
DATA=${VAE_DIST_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/vae-dist/fashion-mnist.h5}
[ -f "$DATA" ] || vae-dist import

RUN=${RUN:-runs/fashion-mnist}
if [ -e "$RUN/latest" ]; then
    RUN="$RUN-$(date +%Y%m%d-%H%M%S)"
fi
echo "== training on 2 ranks; run directory $RUN"
OPENBLAS_NUM_THREADS=1 mpirun -q -np 2 vae-dist --out "$RUN" --epochs "${EPOCHS:-10}"
echo "== done: see $RUN (loss.png, samples.png, reconstructions.png, epochs.csv, ckpt-*.h5)"
