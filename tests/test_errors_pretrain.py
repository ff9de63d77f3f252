"""fakeout_jax.pretrain's answer to user mistakes (issue 19): one line and exit 2, before any
compiling, the same convention as finetune (data.workdir.run_absl_cli)."""
import pytest

from tests import fakeout_tiny
from tests.cli_assert import assert_cli_fails

CONFIG = "tests/fakeout_tiny_pretrain_config.py"


@pytest.fixture(scope="module")
def record_root(tmp_path_factory):
  root = tmp_path_factory.mktemp("records")
  fakeout_tiny.write_av_records(root / "train", num_tracks=8, seed=0)
  fakeout_tiny.write_av_records(root / "val", num_tracks=4, seed=1)
  return root


@pytest.mark.parametrize("override,needle", [
    ("--config.pretrain.temperature=-1", "pretrain.temperature must be > 0"),
    ("--config.train.num_epochs=0", "train.num_epochs must be >= 1"),
    ("--config.train.log_every_steps=0", "train.log_every_steps must be >= 1"),
    ("--config.train.batch_size=64", "cannot fill one batch of 64"),
])
def test_bad_config_values(record_root, tmp_path, override, needle):
  assert_cli_fails("fakeout_jax.pretrain", "--config", CONFIG,
                   f"--config.data.root={record_root}", override, "--workdir", tmp_path / "run",
                   needles=[needle])
  # Refused before the workdir is opened: no config.json, no checkpoint folders left behind.
  assert not (tmp_path / "run" / "config.json").exists()
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_missing_records(tmp_path):
  assert_cli_fails("fakeout_jax.pretrain", "--config", CONFIG,
                   f"--config.data.root={tmp_path / 'nowhere'}", "--workdir", tmp_path / "run",
                   needles=["no TFRecord shards at", "data.prepare"])


def test_a_workdir_that_is_a_file(record_root, tmp_path):
  a_file = tmp_path / "run"
  a_file.write_text("not a folder")
  assert_cli_fails("fakeout_jax.pretrain", "--config", CONFIG,
                   f"--config.data.root={record_root}", "--workdir", a_file,
                   needles=[f"{a_file} is a file"])


@pytest.mark.parametrize("key", ["num_epochs", "log_every_steps", "checkpoint_every_steps",
                                 "eval_every_epochs"])
def test_finetune_refuses_loop_counts_below_one(tmp_path, key):
  """The fine-tuning loop shares pre-training's check (fakeout_jax.state.check_loop_counts)."""
  from fakeout_jax import finetune, state
  from tests import fakeout_tiny
  fakeout_tiny.write_records(tmp_path / "train", num_real=2, num_fake=2, seed=0)
  fakeout_tiny.write_records(tmp_path / "val", num_real=1, num_fake=1, seed=1)
  config = fakeout_tiny.config(tmp_path)
  config.train[key] = 0
  with pytest.raises(state.ConfigError, match=f"train.{key} must be >= 1"):
    finetune.check_config(config)
