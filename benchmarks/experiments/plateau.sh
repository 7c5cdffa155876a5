#!/usr/bin/env bash
# The full-mask reference of the converged trained study: synthetic_small (official init, AdamW)
# under bfloat16 CPU autocast, trained for N iterations (the schedule scaled to N) and evaluated on
# the 500 validation images, to show the plateau (PQ at N and 2N) and to pair bf16 with the fp32
# runs of head_init.sh (same data, seeds and schedule). Resumable: a run whose pq.json exists is skipped.
# Usage: benchmarks/experiments/plateau.sh DATA_DIR OUT_DIR [THREADS]
#   DATA_DIR: made by `pointly data synth --out DATA_DIR --train 1000 --val 500`
#   RUNS: space-separated ITERS:SEED pairs (default below)
#   TAG, EXTRA: a variant of the schedule, e.g. TAG=lr3e-3 EXTRA="--set solver.base_lr=0.003" (runs
#   named bf16-TAG-i<iters>-s<seed>)
set -euo pipefail
source "$(dirname "$0")/train_eval.sh"
data=$1; out=$2; threads=${3:-1}
runs=${RUNS:-"2000:0 1000:0 4000:0 2000:1 2000:2 500:0"}
mkdir -p "$out"
for iters_seed in $runs; do
  iters=${iters_seed%:*}; seed=${iters_seed#*:}
  run="$out/bf16${TAG:+-$TAG}-i$iters-s$seed"
  if [ -f "$run/pq.json" ]; then continue; fi
  # shellcheck disable=SC2086  # EXTRA holds several words on purpose
  train_eval "$run" "$data" "$threads" "$iters" "bf16${TAG:+-$TAG},$iters,$seed" --set seed=$seed --set solver.cpu_amp=true ${EXTRA:-}
done
