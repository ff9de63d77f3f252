#!/usr/bin/env bash
# The README's main command (`make demo`): every stage of the project, end to end, on the
# embedded default (the synthetic data set, tiny configurations, CPU). Each stage is one of the
# documented commands, so this file doubles as a worked example of the command reference.
# Re-running it resumes: finished stages are kept (delete the output folder to start over).
# Each stage's stderr is also kept in OUT/logs/<stage>.log; a failing stage is named, with the
# line of its log that explains it. OUT/summary.json is the scoreboard (tools/demo_summary.py).
set -eEuo pipefail
out="${1:-demo_out}"
mkdir -p "$out/logs"
export TF_CPP_MIN_LOG_LEVEL=2 GLOG_minloglevel=2 PYTHONWARNINGS=ignore
# One XLA compilation cache for every stage: the scratch control compiles what the fine-tuning
# compiled, the evaluations, predict, explain and avdf what the evaluations compiled.
export JAX_COMPILATION_CACHE_DIR="$out/jax_cache"
start=$(date +%s)
seconds="$out/stage_seconds.tsv"
: > "$seconds"
exec 3>&2                       # the terminal's stderr; fd 2 goes through each stage's log
stage_key="" stage_title="" stage_start=$start

end_stage() {
  if [ -n "$stage_key" ]; then
    printf '%s\t%s\n' "$stage_key" "$(( $(date +%s) - stage_start ))" >> "$seconds"
  fi
}

stage() {  # stage KEY TITLE: ends the previous stage, starts logging this one
  end_stage
  stage_key="$1" stage_title="$2" stage_start=$(date +%s)
  echo
  echo "== [$(( stage_start - start ))s] $stage_title"
  exec 2> >(tee "$out/logs/$stage_key.log" >&3)
}

explain() {  # the last line of a log that says what went wrong (progress bars stripped)
  tr '\r' '\n' < "$1" | grep -E 'Error|error:|Exception|failed|refus|No such|not found|Killed' \
    | tail -n 1 || tail -n 1 "$1"
}

on_error() {
  local status=$1
  trap - ERR
  exec 2>&3
  sleep 0.5                     # let the stage's tee write its last lines
  {
    echo
    echo "demo: stage '${stage_title:-setup}' failed (exit $status)."
    if [ -n "$stage_key" ] && [ -s "$out/logs/$stage_key.log" ]; then
      echo "  $(explain "$out/logs/$stage_key.log")"
      echo "  whole log: $out/logs/$stage_key.log; run 'make demo' again to resume."
    fi
  } >&2
  exit "$status"
}
trap 'on_error $?' ERR

synth="$out/synth/FakeAVCeleb_v1.2"

stage environment "environment"
python -c 'import jax, flax, tensorflow as tf; print("jax", jax.__version__, jax.devices(), "| flax", flax.__version__, "| tf", tf.__version__)'

stage synth "1. synthetic audio-visual deepfake set (FakeAVCeleb layout) from real face photos"
# Rendered again from the start (it is deterministic) unless a complete set is there: after an
# interruption the folder holds part of it, after a failure a partial meta_data.csv.
if [ ! -f "$synth/meta_data.csv" ] || [ -f "$synth/synthetic_failures.csv" ]; then
  # 6 of the 36 identities (36 videos) held out for validation: the calibration of the
  # one-verdict stage and the choice of checkpoints read them (the default 10 % gave 18 videos).
  python -m data.synth --out "$out/synth" --layout fakeavceleb --identities 36 \
    --val-fraction 0.17 --videos-per-identity 2 --fakes-per-video 2 --max-seconds 4 \
    --max-height 360 --seed 3 --overwrite
fi

stage records "2. face tracking + alignment -> TFRecord shards (train, and held-out val and test identities)"
for split in train val test; do
  python -m data.prepare --dataset synthetic --root "$synth" --split "$split" \
    --out "$out/records/synthetic/$split" --workers 2 --videos-per-shard 8
done

stage fakeout_pretrain "3. FakeOut: MMV-style self-supervised pre-training (video-audio NCE, negatives from other times of the same video) on the REAL training videos, labels unused"
python -m fakeout_jax.pretrain --config fakeout_jax/configs/pretrain_synthetic_tiny.py \
  --config.data.root="$out/records" --workdir "$out/fakeout_pretrain"

stage fakeout_finetune "4. FakeOut: fine-tune from the self-pre-trained backbone"
python -m fakeout_jax.finetune --config fakeout_jax/configs/synthetic_tiny.py \
  --config.data.root="$out/records" --config.init.mode=pretrained \
  --config.init.checkpoint="$out/fakeout_pretrain" --workdir "$out/fakeout"

stage fakeout_scratch "5. FakeOut control: the same fine-tuning from random weights"
python -m fakeout_jax.finetune --config fakeout_jax/configs/synthetic_tiny.py \
  --config.data.root="$out/records" --workdir "$out/fakeout_scratch"

stage fakeout_evaluate "6. FakeOut: evaluate both, and the pre-trained backbone's own video-audio agreement, on held-out identities (per-video AUC, per category)"
for run in fakeout fakeout_scratch fakeout_pretrain; do
  python -m fakeout_jax.evaluate --config fakeout_jax/configs/synthetic_tiny.py \
    --config.data.root="$out/records" --checkpoint "$out/$run" --out "$out/$run/eval"
done

stage fakeout_predict "7. FakeOut: is this one video fake, which face, when?"
video=$(python tools/demo_pick.py first "$synth" FakeVideo-RealAudio)
python -m fakeout_jax.predict "$video" --checkpoint "$out/fakeout" --out "$out/reports"

stage inconsistency_train "8. inconsistency detector: train on the REAL training videos only (unsupervised)"
python -m inconsistency_jax.train --config inconsistency_jax/configs/synthetic_tiny.py \
  --config.data.root="$out/records/synthetic" --workdir "$out/inconsistency"

stage inconsistency_evaluate "9. inconsistency detector: evaluate per fake category and per synthetic kind (Intra, Cross, Intra+Cross)"
python -m inconsistency_jax.evaluate --config inconsistency_jax/configs/synthetic_tiny.py \
  --config.data.root="$out/records/synthetic" --workdir "$out/inconsistency" \
  --config.eval.ground_truth="$synth/synthetic_ground_truth.csv"

stage inconsistency_explain "10. inconsistency detector: explain one identity-drift video (where is it inconsistent?)"
# the longest held-out drift video: the most windows to compare
drift=$(python tools/demo_pick.py longest "$synth" --kind drift --split test)
python -m inconsistency_jax.explain "$drift" --checkpoint "$out/inconsistency" \
  --out "$out/reports/explain" --top-k 2

stage avdf "11. one verdict: calibrate both detectors on the val identities, fused vs single on the test identities, one detect report"
models=(--fakeout "$out/fakeout" --inconsistency "$out/inconsistency")
python -m avdf.detect calibrate --records "$out/records/synthetic/val" "${models[@]}" \
  --out "$out/avdf/calibration.json"
python -m avdf.detect evaluate --records "$out/records/synthetic/test" "${models[@]}" \
  --calibration "$out/avdf/calibration.json" --out "$out/avdf/eval" \
  --ground-truth "$synth/synthetic_ground_truth.csv"
python -m avdf.detect "$drift" "${models[@]}" --calibration "$out/avdf/calibration.json" \
  --out "$out/avdf/detect" --workers 1

stage summary "12. scoreboard: AUC on the held-out test identities, overall (95 % bootstrap interval) and per synthetic kind"
python tools/demo_summary.py write --out "$out/summary.json" --seconds "$seconds" \
  --ground-truth "$synth/synthetic_ground_truth.csv" \
  --detector fakeout="$out/fakeout/eval" \
  --detector fakeout.scratch="$out/fakeout_scratch/eval" \
  --detector fakeout.av_agreement="$out/fakeout_pretrain/eval@-av_cosine" \
  --detector fakeout.av_sync="$out/fakeout_pretrain/eval@-av_cosine_centered" \
  --detector inconsistency="$out/inconsistency/eval" \
  --detector fused="$out/avdf/eval"

exec 2>&3
echo
echo "== done in $(( $(date +%s) - start ))s: $out/summary.json; tables in $out/fakeout/eval/results.md and $out/inconsistency/eval/table2*.md, reports in $out/reports and $out/avdf/detect"
