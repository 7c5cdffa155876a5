#!/usr/bin/env bash
# Head initialisation x optimiser for the synthetic_small preset, full masks, 3 seeds (issue: point
# supervision as the paper means it). Resumable: a run whose pq.json exists is skipped.
# Usage: benchmarks/experiments/head_init.sh DATA_DIR OUT_DIR [THREADS]
#   DATA_DIR: made by `pointly data synth --out DATA_DIR --train 1000 --val 500`
set -euo pipefail
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
    t0=$(date +%s)
    pointly train --config synthetic_small --out "$run" --threads "$threads" --no-progress --max-iter "$iters" \
      $( [ -f "$run/checkpoint.pth" ] && echo --resume ) \
      --set seed=$seed --set model.head_init=$init "${extra[@]}" \
      --set data.kind=coco_panoptic \
      --set data.train_json=$data/train/panoptic.json --set data.train_panoptic_dir=$data/train/panoptic \
      --set data.train_image_dir=$data/train/images \
      --set data.val_json=$data/val/panoptic.json --set data.val_panoptic_dir=$data/val/panoptic \
      --set data.val_image_dir=$data/val/images
    t1=$(date +%s)
    pointly evaluate --checkpoint "$run/model_final.pth" --dataset $data/val/panoptic.json \
      --gt-dir $data/val/panoptic --image-dir $data/val/images --json-out "$run/pq.tmp.json" --no-progress > "$run/eval.txt"
    mv "$run/pq.tmp.json" "$run/pq.json"
    echo "$variant,$seed,$((t1 - t0)),$(( $(date +%s) - t1 ))" >> "$out/times.csv"
  }
done
