#!/bin/sh
# setup.sh — install the Debian 12 packages vae-dist needs and build it.
# Run from anywhere; builds in the source tree. Uses sudo when not root.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="build-essential autoconf automake pkg-config
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools libopenblas-dev
  libcmocka-dev zlib1g-dev libpng-dev dataset-fashion-mnist"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "== installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi

echo "== building"
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure
make -j"$(nproc)"
