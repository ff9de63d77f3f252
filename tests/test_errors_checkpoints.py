"""A checkpoint and a config that do not belong together: one line naming both, before any
video is decoded or tracked (issue 19, cases 4 and 5)."""
import json

import jax
import numpy as np
import pytest

from fakeout_jax import checkpoints, models, predict, state
from tests import fakeout_tiny
from tests.cli_assert import assert_clean_exit


def _converted(directory, width_mult):
  """A tiny model saved as `python -m fakeout_jax.convert` saves one (with conversion.json)."""
  config = fakeout_tiny.config(root="")
  config.model.width_mult = width_mult
  model = models.create_model(config.model)
  shapes = jax.eval_shape(lambda: state.fresh_variables(config, model, jax.random.PRNGKey(0)))
  variables = jax.tree_util.tree_map(lambda x: np.zeros(x.shape, x.dtype), shapes)
  checkpoints.save_variables(directory, variables,
                             metadata={"model_config": config.model.to_dict()})
  return directory, config


@pytest.fixture(scope="module")
def narrow(tmp_path_factory):
  return _converted(tmp_path_factory.mktemp("ckpt") / "narrow", width_mult=1)


def test_predict_uses_the_model_a_converted_checkpoint_carries(narrow):
  path, config = narrow
  loaded = predict.load_config(str(path), None)
  assert loaded.model.to_dict() == json.loads(json.dumps(config.model.to_dict()))
  variables = state.load_variables(loaded, str(path))  # shapes checked, no error
  assert "params" in variables


def test_another_config_is_refused_naming_both(narrow, tmp_path):
  path, config = narrow
  wide = fakeout_tiny.config(root="")
  wide.model.width_mult = 2
  with pytest.raises(state.ConfigError, match=r"model\.width_mult=1.*--config x\.py asks for "
                                              r"model\.width_mult=2"):
    state.check_model_config(wide, str(path), "--config x.py")
  # Without the carried model (e.g. conversion.json lost), the shapes still catch it.
  (path / "conversion.json").write_text("{}")
  try:
    with pytest.raises(state.ConfigError, match="does not fit the config's model") as error:
      state.load_variables(wide, str(path))
    assert len(str(error.value)) < 600
  finally:
    (path / "conversion.json").write_text(json.dumps({"model_config": config.model.to_dict()}))


def test_fakeout_commands_refuse_an_inconsistency_workdir(tmp_path):
  run = tmp_path / "inconsistency_run"
  (run / "checkpoints" / "latest").mkdir(parents=True)
  (run / "config.json").write_text(json.dumps({"model": {"window_seconds": 1.0}}))
  with pytest.raises(state.ConfigError, match="not a FakeOut workdir"):
    state.carried_model_config(str(run))


def test_predict_command_checks_everything_before_tracking(narrow, tmp_path, capsys):
  path, _ = narrow
  video = tmp_path / "clip.mp4"
  video.write_bytes(b"not decoded: every check below comes first")
  a_file = tmp_path / "file"
  a_file.write_text("x")
  cases = [
      ([str(tmp_path / "missing.mp4"), "--checkpoint", str(path)], "missing.mp4 does not exist"),
      ([str(video), "--checkpoint", str(path), "--out", str(a_file)], "is a file"),
      ([str(video), "--checkpoint", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
       "nope does not exist"),
      ([str(video), "--checkpoint", str(path), "--config", "tests/fakeout_tiny_config.py",
        "--out", str(tmp_path / "o")], "model.width_mult=1"),
  ]
  for args, needle in cases:
    assert predict.main(args) == 2, args
    assert_clean_exit(2, capsys.readouterr().err, 2, needle)


def test_inconsistency_scorer_refuses_a_fakeout_workdir(tmp_path):
  from inconsistency_jax import inference
  run = tmp_path / "fakeout_run"
  (run / "checkpoints" / "best").mkdir(parents=True)
  (run / "config.json").write_text(json.dumps({"model": {"width_mult": 2}}))
  with pytest.raises(inference.CheckpointMismatchError, match="not an inconsistency detector"):
    inference.load_config(run)
