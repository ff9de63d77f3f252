#!/usr/bin/env bash
# The README's main command (`make demo`): every stage of the project, end to end, on the
# embedded default (the synthetic data set, tiny configurations, CPU). Each stage is one of the
# documented commands, so this file doubles as a worked example of the command reference.
# Re-running it resumes: finished stages are kept (delete the output folder to start over).
set -euo pipefail
out="${1:-demo_out}"
mkdir -p "$out"
export TF_CPP_MIN_LOG_LEVEL=2 GLOG_minloglevel=2 PYTHONWARNINGS=ignore
start=$(date +%s)
stage() { echo; echo "== [$(( $(date +%s) - start ))s] $*"; }

stage "environment"
python -c 'import jax, flax, tensorflow as tf; print("jax", jax.__version__, jax.devices(), "| flax", flax.__version__, "| tf", tf.__version__)'

stage "1. synthetic audio-visual deepfake set (FakeAVCeleb layout) from real face photos"
synth="$out/synth/FakeAVCeleb_v1.2"
if [ ! -f "$synth/meta_data.csv" ]; then
  python -m data.synth --out "$out/synth" --layout fakeavceleb --identities 32 \
    --videos-per-identity 2 --fakes-per-video 2 --max-seconds 4 --max-height 360 --seed 3
fi

stage "2. face tracking + alignment -> TFRecord shards (train, and held-out val and test identities)"
for split in train val test; do
  python -m data.prepare --dataset synthetic --root "$synth" --split "$split" \
    --out "$out/records/synthetic/$split" --workers 2 --videos-per-shard 8
done

stage "3. FakeOut: fine-tune the tiny configuration from scratch (no pretrained weights here)"
python -m fakeout_jax.finetune --config fakeout_jax/configs/synthetic_tiny.py \
  --config.data.root="$out/records" --workdir "$out/fakeout"

stage "4. FakeOut: evaluate on held-out identities (per-video AUC, per category)"
python -m fakeout_jax.evaluate --config fakeout_jax/configs/synthetic_tiny.py \
  --config.data.root="$out/records" --checkpoint "$out/fakeout" --out "$out/fakeout/eval"

stage "5. FakeOut: is this one video fake, which face, when?"
video=$(ls "$synth"/FakeVideo-RealAudio/*/*/*/*.mp4 | head -n 1)
python -m fakeout_jax.predict "$video" --checkpoint "$out/fakeout" --out "$out/reports"

# One XLA compilation cache for the stages below: explain reuses evaluate's compiled programs.
export JAX_COMPILATION_CACHE_DIR="$out/jax_cache"

stage "6. inconsistency detector: train on the REAL training videos only (unsupervised)"
python -m inconsistency_jax.train --config inconsistency_jax/configs/synthetic_tiny.py \
  --config.data.root="$out/records/synthetic" --workdir "$out/inconsistency"

stage "7. inconsistency detector: evaluate per fake category and per synthetic kind (Intra, Cross, Intra+Cross)"
python -m inconsistency_jax.evaluate --config inconsistency_jax/configs/synthetic_tiny.py \
  --config.data.root="$out/records/synthetic" --workdir "$out/inconsistency" \
  --config.eval.ground_truth="$synth/synthetic_ground_truth.csv"

stage "8. inconsistency detector: explain one identity-drift video (where is it inconsistent?)"
# the longest held-out drift video: the most windows to compare
drift=$(python -c 'import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if (r["kind"], r["split"]) == ("drift", "test")]
print(max(rows, key=lambda r: float(r["seconds"]))["path"])' "$synth/synthetic_ground_truth.csv")
python -m inconsistency_jax.explain "$synth/$drift" --checkpoint "$out/inconsistency" \
  --out "$out/reports/explain" --top-k 2

stage "done in $(( $(date +%s) - start ))s: tables in $out/fakeout/eval/results.md and $out/inconsistency/eval/table2*.md, reports in $out/reports"
