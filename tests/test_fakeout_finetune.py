"""FakeOut fine-tuning on 2 fake CPU devices: learning, resume after SIGKILL, bad configs."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from fakeout_jax import evaluate, finetune, state
from tests import fakeout_tiny

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def record_root(tmp_path_factory):
  root = tmp_path_factory.mktemp("records")
  fakeout_tiny.write_records(root / "train", seed=0)
  fakeout_tiny.write_records(root / "val", num_real=3, num_fake=3, seed=1)
  return root


def test_pmap_training_lowers_the_loss_and_evaluates(record_root, tmp_path):
  config = fakeout_tiny.config(record_root, num_epochs=4, learning_rate=1e-3)
  final = finetune.train_and_evaluate(config, str(tmp_path / "run"))
  assert int(final.step) == 4 * 12 // 4
  lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
           .splitlines()]
  losses = [line["train/loss"] for line in lines if "train/loss" in line]
  assert np.mean(losses[-3:]) < np.mean(losses[:3])
  assert any("val_auc" in line for line in lines)
  results = evaluate.evaluate(config, str(tmp_path / "run"), str(tmp_path / "eval"))
  assert results["tiny"]["num_real"] == 3 and results["tiny"]["num_fake"] == 3
  assert results["tiny"]["auc"] > 0.5
  assert (tmp_path / "eval" / "scores_tiny.csv").is_file()
  assert (tmp_path / "eval" / "results.md").read_text().startswith("**FakeOut")


def _finetune_command(record_root, workdir):
  return [sys.executable, "-m", "fakeout_jax.finetune",
          "--config", os.path.join(REPO, "tests", "fakeout_tiny_config.py"),
          f"--config.data.root={record_root}", f"--workdir={workdir}"]


@pytest.mark.slow  # ~110 s on 2 cores; the inconsistency trainer's SIGKILL test stays fast
def test_resume_after_sigkill_ends_with_the_same_parameters(record_root, tmp_path):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             PYTHONPATH=REPO)
  straight = tmp_path / "straight"
  subprocess.run(_finetune_command(record_root, straight), env=env, check=True,
                 capture_output=True, cwd=REPO)
  killed = tmp_path / "killed"
  process = subprocess.Popen(_finetune_command(record_root, killed), env=env, cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not (killed / "checkpoints" / "latest" / "2").is_dir():
    assert process.poll() is None and time.time() < deadline, "no mid-run checkpoint appeared"
    time.sleep(0.2)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert not (killed / "checkpoints" / "latest" / "6").exists(), "killed after the end"
  subprocess.run(_finetune_command(record_root, killed), env=env, check=True,
                 capture_output=True, cwd=REPO)
  config = fakeout_tiny.config(record_root)
  a = state.load_variables(config, str(straight), which="latest")
  b = state.load_variables(config, str(killed), which="latest")
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_bad_configs_fail_before_compiling(record_root, tmp_path):
  config = fakeout_tiny.config(record_root)
  config.data.train.path = "nowhere"
  with pytest.raises(state.ConfigError, match="no TFRecord shards at .*nowhere"):
    finetune.train_and_evaluate(config, str(tmp_path / "a"))
  config = fakeout_tiny.config(record_root)
  config.init.mode, config.init.checkpoint = "mmv", str(tmp_path / "missing.pkl")
  with pytest.raises(state.ConfigError, match="missing.pkl does not exist"):
    finetune.train_and_evaluate(config, str(tmp_path / "b"))
