#!/bin/sh
# scaling.sh — the cost model of a vae-dist step at p ranks (docs/scaling.md),
# fed by what bench/run.sh measured, all rows of bench/results.csv: the np=1
# step split of each model, bench/sgemm at smaller batches, and bench/comm's
# latency and bandwidth.
#
#   sh bench/scaling.sh bench/results.csv          # markdown on stdout
#   sh bench/scaling.sh --csv bench/results.csv    # the same as CSV rows
#
# Per step, local batch B, gradient buffer n bytes:
#   compute(B, s) = fb(B) + data + optimizer / s  (np=1 split at batch G; data
#                 and optimizer are per replica: they do not shrink with B;
#                 s ranks share one copy of the optimizer's work, else s = 1)
#   fb(B)       = (forward + backward - P) B/G + P B/G ceiling / sgemm(B)
#                 P: the step's matrix products at G, step * np1_gflops / ceiling;
#                 sgemm(B): bench/sgemm's GFLOP/s at batch B (linear without it)
#   ring(p, n)  = 2(p-1) alpha + 2(p-1)/p n / bw                (0 at p = 1)
# The three reductions (--reduce mpi --bucket 0, --reduce mpi, --reduce shm):
#   blocking    = compute(B, 1) + ring(p, n)
#   overlapped  = compute(B, 1) + max(0, ring(p, n) - backward(B))
#   node        = compute(B, q) + sum(q) + 3 barrier(q) + ring(p/q, n) over the network
#   fused       = compute(B, q) + (q-1)/q n / mbw + 2 barrier(q), on one node:
#                 the sum inside Adam's pass (--node-sum adam), checked
#                 against the runs whose default it was
#                 q ranks per node share the parameters and split Adam, p/q
#                 nodes; node rank i's slice (n/q bytes) goes round a ring
#                 over the nodes, the q rings at once: n bytes per node, the
#                 latency of one ring (the term is 0 on one node)
#   sum(q)      = (q+1)/q n / mbw: node rank i reads slice i of the q gradient
#                 buffers and writes the sum (0 at q = 1)
#   mbw         = 7 n / optimizer: Adam at np=1 moves about 7 n bytes (reads
#                 params, grads, m, v; writes params, m, v); per rank, as if
#                 the node's ranks did not share its memory bandwidth
#   barrier(q)  = ceil(log2 q) alpha (dissemination), three per step
# Shared memory: alpha and bw from bench/comm at np=2 (rows "comm,2,...").
# Cluster, assumed: NET_ALPHA_US (3) per hop, NET_BW_GBS (12, 100 Gb/s
# InfiniBand), NODE_RANKS (8) ranks per node for the node and hierarchical
# variants; the "shm" columns put all p ranks on one node.
# The check, when the rows are present: the np=2 runs with --reduce mpi
# --bucket 0 (rows np2_blocking_*) against the blocking step, with --reduce
# mpi (rows np2_bucketed_*) against the overlapped one, and the default runs
# (rows np2_*, np4_*: --reduce shm) against the node step with q = p; past
# the cores, ceil(p/cores) times the per-rank work, bench/comm at np=4.
set -eu
mode=md
[ "${1-}" = --csv ] && { mode=csv; shift; }
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: scaling.sh [--csv] results.csv" >&2; exit 64; }
exec awk -F, -v mode="$mode" -v net_alpha_us="${NET_ALPHA_US:-3}" \
    -v net_bw_gbs="${NET_BW_GBS:-12}" -v node_ranks="${NODE_RANKS:-8}" '
# times in ms, latencies a in ms, bandwidths bw in bytes/ms
function ring(p, n, a, bw) { return p > 1 ? 2 * (p - 1) * a + 2 * (p - 1) / p * n / bw : 0 }
# recursive halving then doubling (Rabenseifner), p a power of 2
function rhd(p, n, a, bw) { return p > 1 ? 2 * log(p) / log(2) * a + 2 * (p - 1) / p * n / bw : 0 }
# n bytes at p ranks on shared memory or over the network; alg 1:
# hierarchical (a shared-memory ring inside each node of q ranks, then a
# ring over the p/q nodes), 2: halving/doubling, 3: only the ring over the
# p/q nodes (--reduce shm between nodes), 4: halving/doubling over the
# nodes, else the ring
function allreduce(p, n, net, alg) {
    if (!net) return ring(p, n, sa, sb)
    if (alg == 1 && p > q) return ring(q, n, sa, sb) + ring(p / q, n, na, nb)
    if (alg == 2) return rhd(p, n, na, nb)
    if (alg == 3) return p > q ? ring(p / q, n, na, nb) : 0
    if (alg == 4) return p > q ? rhd(p / q, n, na, nb) : 0
    return ring(p, n, na, nb)
}
# --reduce shm: the sum of slice i of q gradient buffers at the memory
# bandwidth of Adam at np=1; a barrier of q ranks, ceil(log2 q) rounds
function nsum(m, k) { return k > 1 ? (k + 1) / k * NB[m] / MB[m] : 0 }
# on one node the sum is fused into the Adam pass (--node-sum adam): Adam
# reads k slices of gradient instead of one, and the sum is neither
# written nor read back; two barriers
function fsum(m, k) { return k > 1 ? (k - 1) / k * NB[m] / MB[m] : 0 }
function barrier(k, a,   r, j) {
    for (j = 1; j < k; j *= 2) r++
    return r * a
}
# ranks per node: all p on shared memory, NODE_RANKS on the network
function nodek(p, net) { return net && p > q ? q : p }
# what --reduce shm adds to compute(B, k), k ranks per node: the sum, three
# barriers, on the network the ring of n bytes per node over the p/k nodes
function node_wait(m, p, net,   k) {
    k = nodek(p, net)
    return nsum(m, k) + 3 * barrier(k, sa) + (net ? allreduce(p, NB[m], 1, 3) : 0)
}
# bytes of the gradient buffer of "D-h1-...-d": weights and biases of the
# encoder, the heads (h -> 2d) and the mirrored decoder, + 5 extra floats
# (VD_GRAD_EXTRA: loss sums, count, stop and failure flags)
function grad_bytes(spec,   d, k, i, f) {
    k = split(spec, d, "-")
    for (i = 1; i + 2 <= k; i++)
        f += 2 * d[i] * d[i + 1] + d[i] + d[i + 1]
    return 4 * (f + (d[k - 1] + 1) * 2 * d[k] + (d[k] + 1) * d[k - 1] + 5)
}
function fb(m, B,   key, slow) {
    key = m SUBSEP G[m] SUBSEP "sgemm_b" B "_gflops"
    slow = 1
    if (key in V && V[key] > 0 && PM[m] > 0)
        slow = V[m, G[m], "sgemm_ceiling_gflops"] / V[key]
    else if (B != G[m] && !((m, B) in LINEAR)) {
        LINEAR[m, B]
        linear = linear " " m " at B = " B
    }
    return (FW[m] + BW[m] - PM[m]) * B / G[m] + PM[m] * B / G[m] * slow
}
# sh: the optimizer sharded over sh ranks; dp: the data time scales with B
function compute(m, B, sh, dp) { return fb(m, B) + DA[m] * (dp ? B / G[m] : 1) + OP[m] / sh }
function backward(m, B) { return fb(m, B) * BW[m] / (FW[m] + BW[m]) }
# the exposed wait with the gradient cut into k equal buckets, bucket i
# ready at i/k of the backward pass, their allreduces back to back: the
# last bucket always shows, and more when the allreduces cannot keep up;
# the best k of 1..256 (in best_k)
function bucketed(p, n, bwd, net, alg,   k, tb, ex, best) {
    best = -1
    for (k = 1; k <= 256; k *= 2) {
        tb = allreduce(p, n / k, net, alg)
        ex = k * tb - (k - 1) / k * bwd
        if (ex < tb) ex = tb
        if (best < 0 || ex < best) { best = ex; best_k = k }
    }
    return best
}
# the step at p ranks, local batch B: v 0 blocking, 1 overlapped (ideal),
# 2 node (--reduce shm)
function step(m, p, B, net, v,   t) {
    if (v == 2) return compute(m, B, nodek(p, net), 0) + node_wait(m, p, net)
    t = allreduce(p, NB[m], net, 0)
    if (v) t = t > backward(m, B) ? t - backward(m, B) : 0
    return compute(m, B, 1, 0) + t
}
# strong (B < G): T(1) / (p T(p)); weak (B = G): T(1) / T(p)
function eff(m, p, B, t) { return compute(m, G[m], 1, 0) / (B == G[m] ? t : p * t) }
function f3(x) {
    return sprintf(x >= 100 ? "%.0f" : x >= 10 ? "%.1f" : x >= 1 ? "%.2f" : "%.3f", x)
}
function cell(m, p, B, net, v,   t) {
    t = step(m, p, B, net, v)
    return f3(t) " (" sprintf("%.2f", eff(m, p, B, t)) ")"
}
function row(m, metric, x) {
    if (mode == "csv") printf "%s,%s,%s,%.6g\n", m, m == "comm" ? 2 : G[m], metric, x
}
function md(s) { if (mode == "md") print s }
function need(key, what) {
    if (key in V) return
    printf "scaling.sh: %s has no %s\n", FILENAME, what > "/dev/stderr"
    bad = 1
}

NR == 1 && $1 == "model" { next }
{ V[$1 SUBSEP $2 SUBSEP $3] = $4 }
$1 != "comm" && $1 != "data" && !($1 in G) { G[$1] = $2; M[++nm] = $1 }
END {
    need("comm" SUBSEP 2 SUBSEP "alpha_us", "comm,2,alpha_us row (bench/comm at np=2)")
    need("comm" SUBSEP 2 SUBSEP "bw_gbs", "comm,2,bw_gbs row (bench/comm at np=2)")
    k = 0 # the models with a step split (none for the conv net: it is not projected)
    for (i = 1; i <= nm; i++)
        if ((M[i] SUBSEP G[M[i]] SUBSEP "np1_optimizer_ms") in V) M[++k] = M[i]
    nm = k
    if (nm == 0) need("any" SUBSEP 0 SUBSEP "np1_optimizer_ms", "np1_*_ms rows for any model")
    if (bad) exit 65
    sa = V["comm", 2, "alpha_us"] / 1e3; sb = V["comm", 2, "bw_gbs"] * 1e6
    na = net_alpha_us / 1e3; nb = net_bw_gbs * 1e6; q = node_ranks
    vtag[0] = "blocking"; vtag[1] = "overlapped"; vtag[2] = "node"
    cores = V["comm", 2, "cores"] + 0
    if (cores < 1) cores = 1
    for (i = 1; i <= nm; i++) {
        m = M[i]; g = G[m]
        DA[m] = V[m, g, "np1_data_ms"]; FW[m] = V[m, g, "np1_forward_ms"]
        BW[m] = V[m, g, "np1_backward_ms"]; OP[m] = V[m, g, "np1_optimizer_ms"]
        NB[m] = grad_bytes(m)
        MB[m] = OP[m] > 0 ? 7 * NB[m] / OP[m] : 1e30
        ceil = V[m, g, "sgemm_ceiling_gflops"]; sps = V[m, g, "np1_samples_per_s"]
        PM[m] = ceil > 0 && sps > 0 ? 1e3 * g / sps * V[m, g, "np1_gflops"] / ceil : 0
    }
    row("comm", "model_alpha_us", sa * 1e3); row("comm", "model_bw_gbs", sb / 1e6)
    for (i = 1; i <= nm; i++) row(M[i], "model_mem_bw_gbs", MB[M[i]] / 1e6)

    md("## Past this machine: the cost model (docs/scaling.md)")
    md("")
    md("- compute(B, s) = fb(B) + data + optimizer/s, from the np=1 split at batch G (data and")
    md("  optimizer per replica; s ranks share one optimizer step, else s = 1); fb(B), forward +")
    md("  backward: the matrix products (P ms at G) slowed by bench/sgemm'"'"'s GFLOP/s at G over")
    md("  that at B, the rest linear in B.")
    md("- allreduce = 2(p-1) alpha + 2(p-1)/p n/bw for the n-byte gradient buffer (ring);")
    md("  --reduce mpi --bucket 0: blocking step = compute(B, 1) + allreduce;")
    md("  --reduce mpi: overlapped = compute(B, 1) + max(0, allreduce - backward(B)).")
    md("- --reduce shm (the default): node = compute(B, q) + sum(q) + 3 barrier(q) + ring over")
    md("  the p/q nodes of n bytes per node, with q ranks per node; sum(q) = (q+1)/q n/mbw,")
    md("  barrier(q) = ceil(log2 q) alpha. With --node-sum adam, on one node, the sum runs")
    md("  inside Adam'"'"'s pass: fused(q) = compute(B, q) + (q-1)/q n/mbw + 2 barrier(q).")
    line = ""
    for (i = 1; i <= nm; i++)
        line = line (i > 1 ? ", " : "") sprintf("%.1f GB/s (%s)", MB[M[i]] / 1e6, M[i])
    md("- Memory bandwidth mbw = 7n / optimizer at np=1 (Adam reads params, grads, m, v and")
    md("  writes params, m, v): " line "; per rank, unshared.")
    fit = ("comm" SUBSEP 2 SUBSEP "fit_worst_pct") in V
    md(sprintf("- Shared memory, measured (bench/comm, np=2): alpha %.3f us per hop, bw %.2f GB/s",
        sa * 1e3, sb / 1e6) (fit ? " (worst fit error " V["comm", 2, "fit_worst_pct"] \
        "% over 1-16 MiB)." : "."))
    md(sprintf("- Cluster, ASSUMED: alpha %s us per hop, bw %s GB/s (100 Gb/s InfiniBand); " \
        "every ring hop over the network, %d ranks per node for the node step.",
        net_alpha_us, net_bw_gbs, q))
    md("")
    md("Check against the measured runs: --reduce mpi --bucket 0 (one blocking allreduce)")
    md("against the blocking step, --reduce mpi (buckets posted during backward) against the")
    md("overlapped one, the default --reduce shm against the node step with all ranks on")
    md("one node (q = p). Past " cores " ranks the ranks share the cores: the compute column is then")
    md("ceil(p/cores) x compute(G/p), the node sum likewise, and an MPI step is blocking,")
    md("with bench/comm'"'"'s allreduce and ping-pong at that rank count when measured.")
    md("--profile'"'"'s allreduce is the wait left after backward with buckets, and with")
    md("--reduce shm on one node the first barrier (its optimizer holds the sums and the")
    md("last barrier).")
    md("")
    md("| model | ranks | reduction: model | compute ms: model | --profile | reduction ms: model | " \
        "bench/comm | --profile | step ms: model | measured |")
    md("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    vname[0] = "mpi, --bucket 0: blocking"
    vname[1] = "mpi, buckets: overlapped"
    vname[2] = "shm (default): node"
    for (i = 1; i <= nm; i++) {
        m = M[i]; g = G[m]
        for (p = 1; p <= 4; p *= 2)
            for (v = 0; v <= 2; v++) {
            # v 0: the --bucket 0 run (np2_blocking_* rows) against the
            # blocking step; 1: the bucketed run (np2_bucketed_*) against the
            # overlapped one (blocking past the cores: on a shared core the
            # reduction of one rank cannot run under the backward pass of
            # another); 2: the default run (np<p>_*) against the node step
            pre = "np" p (v == 0 ? "_blocking_" : v == 1 ? "_bucketed_" : "_")
            if (p == 1 && v < 2 || !((m SUBSEP g SUBSEP pre "samples_per_s") in V)) continue
            sps = V[m, g, pre "samples_per_s"]
            over = int((p + cores - 1) / cores)
            key = "comm" SUBSEP p SUBSEP "allreduce_ms_" NB[m]
            tc = v < 2 && key in V ? V[key] : ""
            if (v == 2) {
                a = p > cores && ("comm" SUBSEP p SUBSEP "alpha_us") in V ? \
                    V["comm", p, "alpha_us"] / 1e3 : sa
                c = over * compute(m, g / p, p, 0)
                # runs with np2_backward rows (commit 84d424b until the
                # default changed back) had the fused default; the others,
                # the sums during backward
                fz = (m SUBSEP g SUBSEP "np2_backward_samples_per_s") in V
                tr = ta = fz ? over * fsum(m, p) + 2 * barrier(p, a) : \
                    over * nsum(m, p) + 3 * barrier(p, a)
            } else {
                c = over * compute(m, g / p, 1, 0)
                tr = allreduce(p, NB[m], 0, 0)
                ta = p > cores && tc != "" ? tc : tr
                if (v == 1 && p <= cores) ta = ta > backward(m, g / p) ? ta - backward(m, g / p) : 0
            }
            t = c + ta
            tm = 1e3 * g / sps
            cm = "-"
            if ((m SUBSEP g SUBSEP pre "optimizer_ms") in V)
                cm = f3(V[m, g, pre "data_ms"] + V[m, g, pre "forward_ms"] + \
                    V[m, g, pre "backward_ms"] + V[m, g, pre "optimizer_ms"])
            else if ((m SUBSEP g SUBSEP pre "step_ms") in V)
                cm = f3(V[m, g, pre "step_ms"] - V[m, g, pre "allreduce_ms"])
            ap = (m SUBSEP g SUBSEP pre "allreduce_ms") in V ? f3(V[m, g, pre "allreduce_ms"]) : "-"
            dev = sprintf("%+.0f", 100 * (t - tm) / tm)
            md(sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s (model %s%%) |", m, p,
                p == 1 ? "none" : v == 2 && fz ? "shm (default then): fused" : vname[v], f3(c), cm, f3(tr), tc == "" ? "-" : f3(tc), ap,
                f3(t), f3(tm), dev == "-0" ? "+0" : dev))
            row(m, "model_" pre "step_ms", t)
            row(m, "model_" pre "allreduce_ms", tr)
        }
    }
    for (i = 1; i <= nm; i++) {
        m = M[i]; g = G[m]
        md("")
        md(sprintf("%s, G = %d, gradient %d bytes: step ms (efficiency); " \
            "strong: B = G/p, weak: B = G; node: --reduce shm, the default", m, g, NB[m]))
        md("")
        md("| scaling | p | B | compute ms | shm allreduce | shm blocking | shm overlapped | " \
            "shm node | net allreduce | net blocking | net overlapped | net node |")
        md("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        md(sprintf("| - | 1 | %d | %s | 0 | %s | %s | %s | 0 | %s | %s | %s |", g,
            f3(compute(m, g, 1, 0)), cell(m, 1, g, 0, 0), cell(m, 1, g, 0, 1),
            cell(m, 1, g, 0, 2), cell(m, 1, g, 1, 0), cell(m, 1, g, 1, 1), cell(m, 1, g, 1, 2)))
        for (s = 0; s < 2; s++)
            for (p = 8; p <= 512; p *= 8) {
                B = s ? g : g / p; sc = s ? "weak" : "strong"
                if (B < 1) {
                    md(sprintf("| %s | %d | %s | local batch below 1: no more than %d ranks " \
                        "| | | | | | | | |", sc, p, g "/" p, g))
                    continue
                }
                md(sprintf("| %s | %d | %g | %s | %s | %s | %s | %s | %s | %s | %s | %s |", sc,
                    p, B, f3(compute(m, B, 1, 0)), f3(allreduce(p, NB[m], 0, 0)),
                    cell(m, p, B, 0, 0), cell(m, p, B, 0, 1), cell(m, p, B, 0, 2),
                    f3(allreduce(p, NB[m], 1, 0)), cell(m, p, B, 1, 0), cell(m, p, B, 1, 1),
                    cell(m, p, B, 1, 2)))
                for (net = 0; net < 2; net++)
                    for (v = 0; v <= 2; v++) {
                        t = step(m, p, B, net, v)
                        tag = sc "_" (net ? "net" : "shm") "_" vtag[v]
                        row(m, "proj_" tag "_p" p "_step_ms", t)
                        row(m, "proj_" tag "_p" p "_eff", eff(m, p, B, t))
                    }
            }
    }
    md("")
    md("Where it stops scaling: the largest p (a power of 2) whose efficiency is still")
    md("0.5 or more.")
    md("")
    md("| model | scaling | shm blocking | shm overlapped | shm node | net blocking | " \
        "net overlapped | net node |")
    md("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for (i = 1; i <= nm; i++)
        for (s = 0; s < 2; s++) {
            m = M[i]; g = G[m]; sc = s ? "weak" : "strong"
            line = "| " m " | " sc " |"
            for (net = 0; net < 2; net++)
                for (v = 0; v <= 2; v++) {
                    last = 1
                    for (p = 2; p <= 512; p *= 2) {
                        B = s ? g : g / p
                        if (B < 1 || eff(m, p, B, step(m, p, B, net, v)) < 0.5) break
                        last = p
                    }
                    line = line " " (last == 512 ? ">= 512" : last) " |"
                    tag = sc "_" (net ? "net" : "shm") "_" vtag[v]
                    row(m, "last_p_eff_half_" tag, last)
                }
            md(line)
        }
    md("")
    md("What would fix it, strong scaling on the assumed network. The first nine rows take")
    md("--reduce mpi; each \"+\" row among them changes one thing from \"k buckets\": the overlap")
    md("with the gradient cut into k buckets, each paying the latency term (best k of 1..256).")
    md(sprintf("Hierarchical: %d ranks per node, a shared-memory ring (measured alpha, bw) inside", q))
    md("each node, then the network ring over the nodes. Recursive halving/doubling: latency")
    md("2 log2(p) alpha instead of 2(p-1) alpha, same bytes. Sharded optimizer: each rank")
    md("updates 1/p of the parameters (reduce-scatter, Adam, allgather: the same bytes as the")
    md("allreduce). Data per rank: the data time scales with B (measured, it did not at np=2).")
    md(sprintf("Node sum: --reduce shm, the default, %d ranks per node; the rows \"node sum + ...\"", q))
    md("change it, none of them implemented: Adam split over all p ranks (a reduce-scatter")
    md("and allgather between the nodes), the ring between the nodes in k buckets during")
    md("backward (the sum in the node still after it), and all of these with bf16 between")
    md("the nodes, halving/doubling over the nodes and data per rank.")
    md("")
    md("| model | p | variant | exposed reduction ms | step ms | efficiency |")
    md("| --- | --- | --- | --- | --- | --- |")
    name[1] = "blocking (--bucket 0)"
    name[2] = "k buckets"
    name[3] = "+ bf16 gradients"
    name[4] = "+ hierarchical"
    name[5] = "+ recursive halving/doubling"
    name[6] = "+ sharded optimizer"
    name[7] = "+ data per rank"
    name[8] = "+ bf16, halving/doubling, sharded, data per rank"
    name[9] = "weak scaling instead (B = G), k buckets"
    name[10] = "node sum (--reduce shm, the default)"
    name[11] = "node sum + Adam over all p ranks"
    name[12] = "node sum + k buckets between the nodes"
    name[13] = "node sum + Adam over p, buckets, bf16, halving/doubling, data per rank"
    name[14] = "weak scaling instead (B = G), node sum"
    for (i = 1; i <= nm; i++) {
        m = M[i]; g = G[m]
        for (p = 64; p <= 512; p *= 8) {
            if (g / p < 1) p = g
            B = g / p; n = NB[m]; k = nodek(p, 1)
            for (v = 1; v <= 14; v++) {
                nn = v == 3 || v == 8 || v == 13 ? n / 2 : n
                alg = v == 4 ? 1 : v == 5 || v == 8 ? 2 : v == 12 ? 3 : v == 13 ? 4 : 0
                sh = v == 6 || v == 8 || v == 11 || v == 13 ? p : v >= 10 ? k : 1
                dp = v == 7 || v == 8 || v == 13
                lb = v == 9 || v == 14 ? g : B
                if (v == 1) w = allreduce(p, n, 1, 0)
                else if (v == 10 || v == 11 || v == 14) w = node_wait(m, p, 1)
                else if (v >= 12) w = nsum(m, k) + 3 * barrier(k, sa) + \
                    bucketed(p, nn, backward(m, lb), 1, alg)
                else w = bucketed(p, nn, backward(m, lb), 1, alg)
                t = compute(m, lb, sh, dp) + w
                e = eff(m, p, lb, t)
                md(sprintf("| %s | %d | %s%s | %s | %s | %.2f |", m, p, name[v],
                    v == 1 || v == 10 || v == 11 || v == 14 ? "" : " (k = " best_k ")", f3(w),
                    f3(t), e))
                row(m, "fix_p" p "_" v "_step_ms", t); row(m, "fix_p" p "_" v "_eff", e)
            }
            if (p == g) break
        }
    }
    if (linear != "") {
        md("")
        md("No bench/sgemm row, so fb(B) was taken as linear in B (optimistic) for:" linear ".")
    }
}' "$1"
