"""tools/fakeout_feature_probe.py on a briefly fine-tuned tiny FakeOut."""
import json
import os
import sys

import numpy as np
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


def test_centred_disagreement_sees_timing_under_a_per_track_offset():
  """The centred score compares each clip's deviation from its track's mean: a track whose
  audio deviations oppose its video's (lip-sync) stands out even when a large per-track offset
  (face, voice) dominates the plain cosine; each kind is scored against all reals."""
  rng = np.random.default_rng(0)
  clips, dim = 6, 8
  kinds = {"real0": "real", "real1": "real", "real2": "real", "lip0": "lipsync",
           "lip1": "lipsync", "swap0": "swap", "swap1": "swap"}
  video, audio, labels = [], [], []
  for name in kinds:
    motion = rng.normal(size=(clips, dim))
    sign = -1.0 if name.startswith("lip") else 1.0
    video.append(motion + 20 * rng.normal(size=dim))
    audio.append(sign * motion + 0.3 * rng.normal(size=(clips, dim)) + 20 * rng.normal(size=dim))
    labels.append(0 if name.startswith("real") else 1)
  split = {"video": np.stack(video), "audio": np.stack(audio), "label": np.array(labels),
           "features": np.zeros((len(kinds), clips, 1)), "video_id": list(kinds)}
  by_kind = fakeout_feature_probe.disagreement_by_kind(split, kinds)
  assert sorted(by_kind) == ["lipsync", "swap"]
  assert by_kind["lipsync"]["centered"] == 1.0 and by_kind["lipsync"]["plain"] < 1.0
  assert by_kind["swap"]["centered"] < 1.0
  assert fakeout_feature_probe.av_disagreement(split, center=True) == pytest.approx(
      fakeout_feature_probe.track_auc(split["label"], -_centred_cosine(split)))


def _centred_cosine(split):
  v = split["video"] - split["video"].mean(axis=1, keepdims=True)
  a = split["audio"] - split["audio"].mean(axis=1, keepdims=True)
  return (v * a).sum(-1) / (np.linalg.norm(v, axis=-1) * np.linalg.norm(a, axis=-1))
