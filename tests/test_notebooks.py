"""The Colab/TPU notebooks run top to bottom on tiny configurations."""
import json
import os
import pathlib

from tests import fakeout_tiny, notebook_runner, video_fixtures

NOTEBOOKS = notebook_runner.REPO / "notebooks"


def test_fakeout_notebook_trains_evaluates_and_predicts(tmp_path):
  root = tmp_path / "records"
  fakeout_tiny.write_records(root / "synthetic" / "train", seed=0)
  fakeout_tiny.write_records(root / "synthetic" / "test", num_real=3, num_fake=3, seed=1)
  video = video_fixtures.write_scene(tmp_path / "clip.mp4", video_fixtures.ONE_FACE, fps=25,
                                     audio=video_fixtures.tone(2.0))
  out = notebook_runner.run_notebook(
      NOTEBOOKS / "fakeout_tpu.ipynb", {
          "CONFIG": os.path.join(notebook_runner.REPO, "fakeout_jax/configs/synthetic_tiny.py"),
          "DATA_ROOT": str(root), "WORKDIR": str(tmp_path / "run"), "INIT_CHECKPOINT": None,
          "OVERRIDES": {"input.num_frames": 4, "input.image_size": 32,
                        "input.eval_num_clips": 2, "train.num_epochs": 1,
                        "train.batch_size": 4, "eval.batch_size": 2},
          "PREDICT_VIDEO": str(video)}, cwd=tmp_path)
  assert "trained to step 3" in out
  metrics = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
  assert metrics["results"]["synthetic"]["num_real"] == 3
  assert pathlib.Path(tmp_path / "run" / "reports" / "clip.html").is_file()
