"""Table 1 (identity from motion): clips of landmark displacements and the 2 x 2 study on tracks
whose motion identifies their person (reals) or another one (fakes)."""
import json

import numpy as np
import pytest

from data import constants, records
from inconsistency_jax import motion_identity
from tests import inconsistency_records as fixtures

IDENTITIES = 4
FRAMES = 121


def test_clips_are_frame_to_frame_displacements():
  landmarks = np.cumsum(np.ones((11, records.NUM_LANDMARKS, 3)), axis=0)
  landmarks[5] += 2.0
  clips = motion_identity.motion_clips(landmarks, clip_frames=4)
  assert clips.shape == (2, 4, records.NUM_LANDMARKS * 3)  # 10 displacements -> 2 clips of 4
  assert np.all(clips[0] == 1.0)  # displacements 0-3
  assert np.all(clips[1, 0] == 3.0) and np.all(clips[1, 1] == -1.0)  # 4 -> 5 and 5 -> 6
  assert np.all(clips[1, 2:] == 1.0)


def _motion(pattern: int, num_frames: int, seed: int) -> np.ndarray:
  """Landmarks moving with a rhythm and direction field that belong to `pattern`."""
  rng = np.random.default_rng(seed)
  directions = np.random.default_rng(500 + pattern).normal(0, 1, (records.NUM_LANDMARKS, 3))
  t = np.arange(num_frames) / constants.FPS
  rhythm = np.sin(2 * np.pi * (1.0 + 0.7 * pattern) * t + rng.uniform(0, 6))[:, None, None]
  base = rng.uniform(60, 160, (1, records.NUM_LANDMARKS, 3))
  noise = rng.normal(0, 0.05, (num_frames, records.NUM_LANDMARKS, 3))
  return base + 2.0 * rhythm * directions + noise


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
  """Reals move like their own identity; fakes of identity i move like identity i + 1."""
  tracks = []
  for i in range(IDENTITIES):
    for label, pattern in ((constants.REAL, i), (constants.FAKE, (i + 1) % IDENTITIES)):
      arrays = records.TrackArrays(
          frames_224=np.zeros((FRAMES, 224, 224, 3), np.uint8),
          timestamps=np.arange(FRAMES) / constants.FPS, detected=np.ones(FRAMES, bool),
          fps=constants.FPS, landmarks=_motion(pattern, FRAMES, seed=10 * i + label))
      category = "real" if label == constants.REAL else "FVFA-WL"
      tracks.append((arrays, fixtures.meta(f"v{i}_{label}", f"id{i}", label=label,
                                           category=category)))
  tracks.append((records.TrackArrays(  # a fake category the study leaves out
      frames_224=np.zeros((FRAMES, 224, 224, 3), np.uint8),
      timestamps=np.arange(FRAMES) / constants.FPS, detected=np.ones(FRAMES, bool),
      fps=constants.FPS, landmarks=_motion(0, FRAMES, seed=99)),
      fixtures.meta("rvfa", "id0", label=constants.FAKE, category="RVFA")))
  return fixtures.write_shards(tmp_path_factory.mktemp("motion"), tracks, 1)


def test_motion_names_whose_motion_it_is(shards, tmp_path):
  results = motion_identity.run_study(shards, clip_frames=12, epochs=25, batch_size=16, seed=0)
  acc = results["accuracy"]
  assert results["identities"] == IDENTITIES and results["chance"] == 0.25
  assert results["clips"]["real"] == {"train": 4 * 7, "test": 4 * 3}
  # Each classifier recognises the motion it was trained on and is wrong on the other kind,
  # where the same motion carries another identity's name.
  assert acc["real"]["real"] >= 0.9 and acc["fake"]["fake"] >= 0.9
  assert acc["real"]["fake"] <= 0.2 and acc["fake"]["real"] <= 0.2
  table = motion_identity.table(results).markdown()
  assert "| train on real |" in table and "chance 25.0%" in table


def test_command_line_writes_table_1(shards, tmp_path):
  out = tmp_path / "out"
  assert motion_identity.main(["--records", *shards, "--out", str(out), "--clip-frames", "12",
                               "--epochs", "2"]) == 0
  assert (out / "table1.md").is_file() and (out / "table1.csv").is_file()
  assert json.loads((out / "results.json").read_text())["identities"] == IDENTITIES
  assert motion_identity.main(["--records", *shards, "--out", str(out), "--clip-frames",
                               "500"]) == 2  # clips longer than every track: an input error
