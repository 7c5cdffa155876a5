# Sourced by head_init.sh and plateau.sh: train synthetic_small on a synthetic dataset folder, then
# evaluate the final model on its validation split; resumable (a run whose pq.json exists is
# skipped by the callers, a run with a checkpoint resumes). Appends "label,train s,eval s" to
# OUT/times.csv.
# Usage: train_eval RUN_DIR DATA_DIR THREADS ITERS TIMES_LABEL [--set key=value ...]
train_eval() {
  local run=$1 data=$2 threads=$3 iters=$4 label=$5
  shift 5
  local t0 t1
  t0=$(date +%s)
  pointly train --config synthetic_small --out "$run" --threads "$threads" --no-progress --max-iter "$iters" \
    $( [ -f "$run/checkpoint.pth" ] && echo --resume ) "$@" --coco-root "$data" --coco-splits train,val
  t1=$(date +%s)
  pointly evaluate --checkpoint "$run/model_final.pth" --dataset "$data/val/panoptic.json" \
    --gt-dir "$data/val/panoptic" --image-dir "$data/val/images" --json-out "$run/pq.tmp.json" --no-progress > "$run/eval.txt"
  mv "$run/pq.tmp.json" "$run/pq.json"
  echo "$label,$((t1 - t0)),$(( $(date +%s) - t1 ))" >> "$(dirname "$run")/times.csv"
}
