"""Every command's answer to ordinary mistakes: one or two lines, the documented exit code.

The exit codes are data.cli_errors': 0 done, 1 run failed / some inputs failed, 2 usage or input
error, 3 internal error (a bug, with its traceback).
"""
import json
import os
import re

import pytest

from data import cli_errors
from data.facetrack import cli as facetrack_cli
from tests import video_fixtures
from tests.cli_assert import assert_clean_exit, assert_cli_fails

CONFIG = "inconsistency_jax/configs/synthetic_tiny.py"


# ------------------------------------------------------------------------------ the convention


def test_handle_sorts_user_errors_from_bugs(capsys):
  def user_mistake():
    raise cli_errors.UserError("--out x is a file", "give a folder")

  assert cli_errors.handle(user_mistake) == 2
  assert capsys.readouterr().err == "error: --out x is a file\n  give a folder\n"

  def registered():
    raise KeyError("a library's own error type")

  assert cli_errors.handle(registered, user_errors={KeyError: 1}) == 1
  assert "Traceback" not in capsys.readouterr().err

  def full_disk():
    raise OSError(28, "No space left on device", "/data/out/shard")

  assert cli_errors.handle(full_disk) == 1
  assert "/data/out/shard: No space left on device" in capsys.readouterr().err

  def bug():
    return [][1]

  assert cli_errors.handle(bug) == 3
  err = capsys.readouterr().err
  assert "Traceback" in err and "IndexError" in err and "bug" in err

  assert cli_errors.handle(user_mistake, verbose=True) == 2
  assert "Traceback" in capsys.readouterr().err


def test_long_messages_are_cut_to_one_short_line(capsys):
  def dump():
    raise cli_errors.UserError("shape mismatch " + "0.123 " * 100000 + "\nmore lines")

  assert cli_errors.handle(dump) == 2
  err = capsys.readouterr().err
  assert len(err) < 600 and err.count("\n") == 1


def test_writable_dir_checks_before_any_work(tmp_path):
  a_file = tmp_path / "f"
  a_file.write_text("x")
  with pytest.raises(cli_errors.UserError, match="is a file"):
    cli_errors.writable_dir(a_file)
  with pytest.raises(cli_errors.UserError, match="a parent of it is a file"):
    cli_errors.writable_dir(a_file / "sub")
  assert cli_errors.writable_dir(tmp_path / "new" / "dir").is_dir()
  assert not list((tmp_path / "new" / "dir").iterdir())  # the probe file is gone


def test_nearest_config_key():
  config = {"train": {"num_steps": 3, "seed": 0}, "input": {"skip_corrupt_records": False}}
  error = cli_errors.unknown_config_key("input.skip_corupt_records", config)
  assert 'did you mean "input.skip_corrupt_records"' in str(error)


# --------------------------------------------------------------------------- commands, as run


@pytest.mark.parametrize("args,needle", [
    (["--config", "missing.py", "--workdir", "w"], "missing.py: no such file"),
    (["--config", CONFIG, "--config.train.num_stepz=3", "--workdir", "w"],
     'did you mean "train.num_steps"'),
    (["--config", CONFIG, "--config.trian.seed=3", "--workdir", "w"],
     'did you mean "train.seed"'),
    (["--config", CONFIG, "--workdri", "w"], "workdri"),
    (["--config", CONFIG], "--workdir"),
])
def test_trainer_flag_and_config_mistakes(args, needle):
  """The flag parsing of every absl command (data.workdir.run_absl_cli), on the trainer flags."""
  from absl import flags
  from ml_collections import config_flags
  from data import workdir
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "config", flag_values=flag_values,
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "workdir", flag_values=flag_values)
  flags.mark_flags_as_required(["config", "workdir"], flag_values=flag_values)
  with pytest.raises(cli_errors.UserError, match=re.escape(needle)):
    workdir._parse_flags(["train", *args], flag_values)


@pytest.mark.slow
def test_trainer_config_typo_as_run():
  assert_cli_fails("inconsistency_jax.train", "--config", CONFIG, "--workdir", "w",
                   "--config.train.num_stepz=3", needles=['did you mean "train.num_steps"'])


def test_data_commands_in_a_subprocess(tmp_path):
  a_file = tmp_path / "file"
  a_file.write_text("x")
  assert_cli_fails("data.prepare", "--dataset", "ffpq", "--root", tmp_path, "--split", "test",
                   "--out", tmp_path / "o", needles=["unknown dataset 'ffpq'"])
  assert_cli_fails("data.facetrack", tmp_path, "--out", a_file, needles=["is a file"])
  assert_cli_fails("data.datasets", "ffpp", "--root", tmp_path / "nope",
                   needles=["is not a directory"])


def test_facetrack_refuses_empty_folders_and_cleans_stale_partials(tmp_path, capsys):
  source, out = tmp_path / "videos", tmp_path / "out"
  source.mkdir()
  (source / "notes.txt").write_text("no videos here")
  assert facetrack_cli.main([str(source), "--out", str(out), "--workers", "0"]) == 2
  assert_clean_exit(2, capsys.readouterr().err, 2, "no video files")

  # A killed run's unfinished folder (its pid is gone) goes; a live run's stays.
  dead = out / ".partial" / "sub" / "clip.999999999"
  live = out / ".partial" / f"other.{os.getpid()}"
  for folder in (dead, live):
    folder.mkdir(parents=True)
    (folder / "clip.mp4").write_bytes(b"half")
  video_fixtures.garbage_video(source / "broken.mp4")
  assert facetrack_cli.main([str(source), "--out", str(out), "--workers", "0"]) == 1
  assert not dead.exists() and live.is_dir()
  manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
  assert [e["status"] for e in manifest] == ["error"]
