#!/usr/bin/env bash
# The README's main command (`make demo`): every stage of the project, end to end, on the
# embedded default (the synthetic data set, tiny configurations, CPU). Each stage is one of the
# documented commands, so this file doubles as a worked example of the command reference.
set -euo pipefail
out="${1:-demo_out}"
mkdir -p "$out"
export TF_CPP_MIN_LOG_LEVEL=2 GLOG_minloglevel=2

echo "== environment"
python -c 'import jax, flax, tensorflow as tf; print("jax", jax.__version__, jax.devices(), "| flax", flax.__version__, "| tf", tf.__version__)'
