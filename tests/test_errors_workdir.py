"""--force never destroys a run: it cannot cross detectors, and a workdir is written only after
its checkpoint was restored with the new config; killed saves leave nothing behind."""
import json

import ml_collections
import numpy as np
import pytest

from data import workdir as wd


def _fakeout(width_mult=2):
  return ml_collections.ConfigDict({"model": {"width_mult": width_mult, "depth": 50},
                                    "train": {"lr": 1e-3}})


def _inconsistency():
  return ml_collections.ConfigDict({"model": {"window_seconds": 1.0}, "loss": {"tau": 0.1},
                                    "train": {"lr": 1e-3}})


def _run(path, config, shape=(4,)):
  run = wd.Workdir(path, config)
  run.save(1, {"params": {"w": np.ones(shape, np.float32)}})
  run.close()
  return (path / "config.json").read_bytes()


def test_force_refuses_the_other_detectors_workdir_and_writes_nothing(tmp_path):
  before = _run(tmp_path, _inconsistency())
  files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
  with pytest.raises(wd.WorkdirError, match="inconsistency detector run, not a fakeout one"):
    wd.Workdir(tmp_path, _fakeout(), force=True)
  assert (tmp_path / "config.json").read_bytes() == before
  assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == files


def test_a_forced_config_that_does_not_fit_leaves_the_run_intact(tmp_path):
  before = _run(tmp_path, _fakeout(width_mult=2), shape=(8,))
  run = wd.Workdir(tmp_path, _fakeout(width_mult=1), force=True)
  with pytest.raises(wd.WorkdirError, match="does not fit this config") as error:
    run.restore({"params": {"w": np.zeros((4,), np.float32)}})
  run.close()
  assert len(str(error.value)) < 700
  assert (tmp_path / "config.json").read_bytes() == before
  # The original run still resumes.
  again = wd.Workdir(tmp_path, _fakeout(width_mult=2))
  restored, _ = again.restore({"params": {"w": np.zeros((8,), np.float32)}})
  np.testing.assert_array_equal(restored["params"]["w"], np.ones(8))
  again.close()


def test_stale_checkpoint_temporaries_are_removed(tmp_path):
  _run(tmp_path, _fakeout())
  stale = tmp_path / "checkpoints" / "best" / "7.orbax-checkpoint-tmp-1712345"
  stale.mkdir(parents=True)
  (stale / "partial").write_text("x")
  wd.Workdir(tmp_path, _fakeout()).close()
  assert not stale.exists()
  assert json.loads((tmp_path / "config.json").read_text())["model"]["width_mult"] == 2
