#!/bin/sh
# plot-loss.sh RUN_DIR — draws RUN_DIR/loss.png from metrics.csv and
# epochs.csv: training loss per logging interval and test loss per epoch,
# each with its reconstruction and KL parts. Needs gnuplot (gnuplot-nox).
set -eu
RUN=${1:?usage: plot-loss.sh RUN_DIR}
command -v gnuplot >/dev/null || { echo "plot-loss.sh: gnuplot not installed" >&2; exit 69; }
gnuplot <<GP
set datafile separator ','
set terminal pngcairo size 900,520 noenhanced
set output '$RUN/loss.png'
set title 'vae-dist: negative ELBO (nats per sample)'
set xlabel 'step'
set ylabel 'nats'
set key top right
set grid
stats '$RUN/epochs.csv' using 4 nooutput
plot '$RUN/metrics.csv' using 1:3 skip 1 with lines lw 1 lc rgb '#8888ff' title 'train loss', \
     '' using 1:4 skip 1 with lines lw 1 lc rgb '#88cc88' title 'train recon', \
     '' using 1:5 skip 1 with lines lw 1 lc rgb '#ffaa66' title 'train KL', \
     '$RUN/epochs.csv' using 2:4 skip 1 with linespoints pt 7 lc rgb '#0000cc' title 'test loss', \
     '' using 2:5 skip 1 with linespoints pt 7 lc rgb '#008800' title 'test recon', \
     '' using 2:6 skip 1 with linespoints pt 7 lc rgb '#cc5500' title 'test KL'
GP
echo "wrote $RUN/loss.png"
