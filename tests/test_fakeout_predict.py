"""Single-video prediction: tracking -> clips -> scores -> JSON + HTML report; clear failures."""
import json

import jax
import pytest

from fakeout_jax import checkpoints, models, predict, state
from tests import fakeout_tiny, video_fixtures


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
  """A freshly initialised tiny FakeOut saved as `python -m fakeout_jax.convert` would."""
  directory = tmp_path_factory.mktemp("ckpt")
  config = fakeout_tiny.config(root="")
  variables = state.fresh_variables(config, models.create_model(config.model),
                                    jax.random.PRNGKey(0))
  checkpoints.save_variables(directory / "converted", jax.device_get(variables))
  return directory / "converted", config


def test_report_of_a_two_face_video(tiny_checkpoint, tmp_path):
  path, config = tiny_checkpoint
  video = video_fixtures.write_scene(tmp_path / "two.mp4", video_fixtures.TWO_FACES, fps=25,
                                     audio=video_fixtures.tone(2.0))
  result = predict.predict(str(video), str(path), config, str(tmp_path / "out"))
  assert result["verdict"] in ("real", "fake") and len(result["tracks"]) == 2
  assert result["score"] == max(t["score"] for t in result["tracks"])
  for track in result["tracks"]:
    assert len(track["clips"]) == config.input.eval_num_clips
    assert track["score"] == pytest.approx(sum(c["score"] for c in track["clips"]) /
                                           len(track["clips"]))
    assert 0 <= track["clips"][0]["start"] < track["clips"][-1]["end"] <= 2.1
  saved = json.loads((tmp_path / "out" / "two.json").read_text())
  assert saved["verdict"] == result["verdict"] and not saved["warnings"]
  html = (tmp_path / "out" / "two.html").read_text()
  assert html.count("data:image/png;base64,") >= 1 + 2 * config.input.eval_num_clips
  assert "Face 2" in html


def test_silent_video_is_scored_with_a_warning(tiny_checkpoint, tmp_path):
  path, config = tiny_checkpoint
  video = video_fixtures.write_scene(tmp_path / "silent.mp4", video_fixtures.ONE_FACE, fps=25)
  result = predict.predict(str(video), str(path), config, str(tmp_path / "out"))
  assert result["warnings"] and "no audio" in result["warnings"][0]


def test_command_line_errors(tiny_checkpoint, tmp_path, capsys):
  path, _ = tiny_checkpoint
  config_file = "tests/fakeout_tiny_config.py"
  empty = video_fixtures.write_scene(tmp_path / "empty.mp4", video_fixtures.NO_FACE, fps=25)
  assert predict.main([str(empty), "--checkpoint", str(path), "--config", config_file,
                       "--out", str(tmp_path)]) == 2
  assert "no face found" in capsys.readouterr().err
  garbage = video_fixtures.garbage_video(tmp_path / "garbage.mp4")
  assert predict.main([str(garbage), "--checkpoint", str(path), "--config", config_file,
                       "--out", str(tmp_path)]) == 2
  assert "cannot read" in capsys.readouterr().err
