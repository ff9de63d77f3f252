"""Run directories: config guard, latest/best orbax checkpoints, metrics, the NaN guard."""
import json

import ml_collections
import numpy as np
import pytest

from data import workdir as wd


def _config(lr=1e-3):
  return ml_collections.ConfigDict({"lr": lr, "model": {"width": 2}})


def test_checkpoints_roundtrip_and_best_by_metric(tmp_path):
  run = wd.Workdir(tmp_path, _config(), best_metric="auc")
  state = {"params": {"w": np.arange(4, dtype=np.float32)}, "step": np.array(3, np.int32)}
  run.save(3, state, extra={"epoch": 0, "index": 12}, metrics={"auc": 0.7})
  run.save(6, {"params": {"w": np.ones(4, np.float32)}, "step": np.array(6, np.int32)},
           extra={"epoch": 1, "index": 0}, metrics={"auc": 0.6})
  run.write_metrics(6, {"loss": 0.5, "lr": np.float32(1e-3), "hist": np.zeros(3)}, "train/")
  run.close()
  again = wd.Workdir(tmp_path, _config(), best_metric="auc")
  assert again.latest_step() == 6
  restored, extra = again.restore(state)
  np.testing.assert_array_equal(restored["params"]["w"], np.ones(4))
  assert extra == {"epoch": 1, "index": 0}
  best, extra = again.restore(state, which="best")
  np.testing.assert_array_equal(best["params"]["w"], np.arange(4))
  assert extra["index"] == 12
  line = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
  assert line == {"step": 6, "train/loss": 0.5, "train/lr": pytest.approx(1e-3)}
  assert list((tmp_path / "tensorboard").iterdir())
  again.close()


def test_another_config_is_refused_unless_forced(tmp_path):
  run = wd.Workdir(tmp_path, _config())
  run.save(1, {"w": np.zeros(2, np.float32)})
  run.close()
  with pytest.raises(wd.WorkdirError, match=r"another config \(differs in: lr\).*--force"):
    wd.Workdir(tmp_path, _config(lr=1.0))
  forced = wd.Workdir(tmp_path, _config(lr=1.0), force=True)
  # Nothing is written until the old checkpoint has been restored with the new config.
  assert json.loads((tmp_path / "config.json").read_text())["lr"] == 1e-3
  forced.restore({"w": np.zeros(2, np.float32)})
  forced.close()
  assert json.loads((tmp_path / "config.json").read_text())["lr"] == 1.0


def test_non_finite_loss_names_the_last_good_checkpoint(tmp_path):
  run = wd.Workdir(tmp_path, _config())
  wd.check_finite(0, 1.5, run)
  with pytest.raises(wd.NonFiniteLossError, match="before any checkpoint"):
    wd.check_finite(1, float("nan"), run)
  run.save(4, {"w": np.zeros(2, np.float32)})
  with pytest.raises(wd.NonFiniteLossError, match="last good checkpoint is step 4"):
    wd.check_finite(5, float("inf"), run)
  run.close()
