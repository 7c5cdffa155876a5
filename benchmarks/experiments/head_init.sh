#!/usr/bin/env bash
# Head initialisation x optimiser for the synthetic_small preset, full masks, 3 seeds (issue: point
# supervision as the paper means it). Resumable: a run whose pq.json exists is skipped.
# Usage: benchmarks/experiments/head_init.sh DATA_DIR OUT_DIR [THREADS]
#   DATA_DIR: made by `pointly data synth --out DATA_DIR --train 1000 --val 500`
set -euo pipefail
source "$(dirname "$0")/train_eval.sh"
data=$1; out=$2; threads=${3:-1}; iters=${ITERS:-2000}
mkdir -p "$out"
# AdamW pairs first (paired by seed), the official SGD last
for variant_seed in official-AdamW:0 msra-AdamW:0 official-AdamW:1 msra-AdamW:1 official-AdamW:2 msra-AdamW:2 \
                    official-SGD:0 official-SGD:1 official-SGD:2; do
  variant=${variant_seed%:*}; seed=${variant_seed#*:}
  {
    init=${variant%-*}; opt=${variant#*-}
    run="$out/$variant-s$seed"
    if [ -f "$run/pq.json" ]; then continue; fi
    extra=()
    if [ "$opt" = SGD ]; then extra=(--set solver.optimizer=SGD --set solver.base_lr=0.01); fi
    train_eval "$run" "$data" "$threads" "$iters" "$variant,$seed" \
      --set seed=$seed --set model.head_init=$init "${extra[@]}"
  }
done
