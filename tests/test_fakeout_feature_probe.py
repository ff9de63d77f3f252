"""tools/fakeout_feature_probe.py on a briefly fine-tuned tiny FakeOut."""
import json
import os
import sys

import pytest

from fakeout_jax import finetune
from tests import fakeout_tiny
from tests.conftest import REPO_ROOT

sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))
import fakeout_feature_probe  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  root = tmp_path_factory.mktemp("records")
  fakeout_tiny.write_records(root / "train", seed=0)
  fakeout_tiny.write_records(root / "val", num_real=3, num_fake=3, seed=1)
  workdir = tmp_path_factory.mktemp("run")
  finetune.train_and_evaluate(fakeout_tiny.config(root, num_epochs=1), str(workdir))
  return root, workdir


@pytest.mark.slow  # ~130 CPU-seconds: a fine-tuning, its evaluation and the probes compile
def test_probes_find_a_visible_signal_and_report_every_probe(run, tmp_path):
  root, workdir = run
  out = tmp_path / "probe.json"
  result = fakeout_feature_probe.main([
      "--records", str(root), "--checkpoint", str(workdir), "--steps", "120",
      "--config", os.path.join(REPO_ROOT, "tests", "fakeout_tiny_config.py"),
      "--json", str(out)])
  assert json.loads(out.read_text()) == result
  assert result["tracks"]["train"] == {"real": 6, "fake": 6, "clips_per_track": 2}
  assert result["tracks"]["val"] == {"real": 3, "fake": 3, "clips_per_track": 2}
  # The fakes carry a bright square: a probe on any features finds it on new tracks.
  assert result["logistic"]["val_auc"] >= 0.9
  for normalisation in ("raw", "layer_norm"):
    assert sorted(result["head"][normalisation], key=int) == ["100", "120"]
    for point in result["head"][normalisation].values():
      assert 0 <= point["val_auc"] <= 1 and point["loss_last_50"] > 0
  assert set(result["av_disagreement_auc"]) == {"train", "val"}
