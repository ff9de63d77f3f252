"""The Colab/TPU notebooks run top to bottom on tiny configurations."""
import json
import os
import pathlib

from tests import fakeout_tiny, notebook_runner, video_fixtures

NOTEBOOKS = notebook_runner.REPO / "notebooks"


def test_fakeout_notebook_trains_evaluates_and_predicts(tmp_path):
  root = tmp_path / "records"
  fakeout_tiny.write_records(root / "synthetic" / "train", seed=0)
  fakeout_tiny.write_records(root / "synthetic" / "val", num_real=2, num_fake=2, seed=2)
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


def test_inconsistency_notebook_trains_evaluates_and_explains(tmp_path):
  from tests import inconsistency_records as fixtures
  root = tmp_path / "records"
  fixtures.real_set(root / "train", identities=3, num_frames=50)
  tracks = [(fixtures.track_arrays(10 + i, 50, seed=40 + i),
             fixtures.meta(f"test{i}", f"id{10 + i}", label=i % 2,
                           category="FVRA-WL" if i % 2 else "real", split="test"))
            for i in range(4)]
  fixtures.write_shards(root / "test", tracks, 1, prefix="test")
  video = video_fixtures.write_scene(tmp_path / "clip.mp4", video_fixtures.ONE_FACE, fps=25,
                                     audio=video_fixtures.tone(3.0))
  out = notebook_runner.run_notebook(
      NOTEBOOKS / "inconsistency_tpu.ipynb", {
          "CONFIG": os.path.join(notebook_runner.REPO,
                                 "inconsistency_jax/configs/synthetic_tiny.py:smoke"),
          "DATA_ROOT": str(root), "WORKDIR": str(tmp_path / "run"), "ADAFACE": None,
          "WHISPER": None, "GROUND_TRUTH": None,
          "OVERRIDES": {"eval.motion_bins": 1}, "EXPLAIN_VIDEO": str(video)}, cwd=tmp_path)
  assert "trained to step 6" in out and "least consistent seconds" in out
  summary = json.loads((tmp_path / "run" / "eval" / "summary.json").read_text())
  assert summary["sets"]["synthetic"]["tracks"] == 4
  assert (tmp_path / "run" / "explain" / "report.html").is_file()
