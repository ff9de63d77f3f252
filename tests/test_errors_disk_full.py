"""A full disk during a checkpoint save (issue 19): one line naming the workdir and "no space
left", exit 1 (the run failed; a re-run resumes), and the previous checkpoint stays restorable."""
import errno
import logging
import os
import subprocess

import ml_collections
import numpy as np
import pytest

from data import cli_errors
from data import workdir as wd
from tests.cli_assert import assert_clean_exit

SIZE = 400_000  # float32s: 1.6 MB, so a 2 MB disk holds one checkpoint but not two


def _config():
  return ml_collections.ConfigDict({"model": {"width_mult": 1}, "train": {"lr": 1e-3}})


def _state(value):
  # random, so that no compression makes it fit the small disk
  noise = np.random.default_rng(0).random(SIZE, np.float32)
  return {"params": {"w": np.concatenate([[value], noise[1:]]).astype(np.float32)}}


def _restored(run):
  state, extra = run.restore(_state(0.0))
  return float(state["params"]["w"][0]), extra


def _save_that_fills_the_disk(run, error):
  real = run.latest.save

  def save(step, *args, **kwargs):
    if step < 2:
      return real(step, *args, **kwargs)
    # What orbax leaves when a write fails: the step's temporary folder, half written.
    (run.path / "checkpoints" / "latest" / f"{step}.orbax-checkpoint-tmp-0").mkdir()
    raise error
  return save


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/w/checkpoints/latest/2/x"),
    # how orbax's TensorStore writes report it (measured on a full tmpfs)
    ValueError('RESOURCE_EXHAUSTED: Error writing "w/0" in OCDBT database: Failed to write '
               '116511 bytes to file 15: No space left on device [OS error: 28]'),
], ids=["oserror", "orbax"])
def test_a_full_disk_is_one_line_and_the_last_checkpoint_stays(tmp_path, monkeypatch, capsys,
                                                               error):
  run = wd.Workdir(tmp_path, _config(), best_metric="auc")
  run.save(1, _state(1.0), extra={"step": 1})
  monkeypatch.setattr(run.latest, "save", _save_that_fills_the_disk(run, error))

  code = cli_errors.handle(lambda: run.save(2, _state(2.0), extra={"step": 2}))
  err = capsys.readouterr().err
  assert_clean_exit(code, err, cli_errors.EXIT_FAILED, str(tmp_path), "no space left",
                    "resumes from step 1")
  assert len(err.strip().splitlines()) == 2  # error: ... / what to do
  assert not list(tmp_path.glob("checkpoints/*/*.orbax-checkpoint-tmp*"))
  assert run.latest_step() == 1 and _restored(run) == (1.0, {"step": 1})
  run.close()
  reopened = wd.Workdir(tmp_path, _config(), best_metric="auc")  # the re-run
  assert reopened.latest_step() == 1 and _restored(reopened) == (1.0, {"step": 1})
  reopened.close()


def test_other_save_errors_are_not_taken_for_a_full_disk(tmp_path, monkeypatch):
  run = wd.Workdir(tmp_path, _config())
  run.save(1, _state(1.0))
  monkeypatch.setattr(run.latest, "save",
                      _save_that_fills_the_disk(run, ValueError("RESOURCE_EXHAUSTED: memory")))
  with pytest.raises(ValueError, match="memory"):
    run.save(2, _state(2.0))
  run.close()


@pytest.fixture
def small_disk(tmp_path):
  """A 2 MB tmpfs (needs the right to mount, e.g. root in a container; skipped otherwise)."""
  mount = tmp_path / "disk"
  mount.mkdir()
  made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                        capture_output=True)
  if made.returncode != 0:
    pytest.skip("cannot mount a small tmpfs here")
  try:
    yield mount
  finally:
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_disk(small_disk, capsys, caplog):
  """orbax's own failure on a full file system, end to end (no monkeypatching)."""
  run = wd.Workdir(small_disk / "run", _config(), best_metric="auc")
  run.save(1, _state(1.0), extra={"step": 1})
  with caplog.at_level(logging.ERROR):
    code = cli_errors.handle(lambda: run.save(2, _state(2.0), extra={"step": 2}))
  err = capsys.readouterr().err
  assert_clean_exit(code, err, cli_errors.EXIT_FAILED, str(small_disk / "run"), "no space left")
  assert not [r for r in caplog.records if "raised an exception" in r.getMessage()]
  assert not list(small_disk.glob("run/checkpoints/*/*.orbax-checkpoint-tmp*"))
  assert _restored(run) == (1.0, {"step": 1})
  run.close()
