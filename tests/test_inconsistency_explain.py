"""explain: windows as time ranges, flagged windows, flags for short and silent videos, and a
self-contained HTML report."""
import json
import re

import numpy as np
import pytest

from data import constants, tracks as tracks_lib
from inconsistency_jax import explain, inference, scoring
from tests import inconsistency_records as fixtures
from tests import video_fixtures as vf


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
  root = tmp_path_factory.mktemp("explain")
  config = fixtures.smoke_config(root)
  workdir = fixtures.untrained_workdir(root / "run", config)
  return inference.Scorer.from_workdir(workdir)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
  """A real source file: the records of a tracked video carry its audio codec (schema v2)."""
  path = tmp_path_factory.mktemp("clip") / "clip.mp4"
  return str(vf.write_scene(path, vf.Scene((64, 48), 0.5, ()), fps=29, audio=vf.tone(5.0)))


def _track(clip, index, num_frames, audio=True, seed=0, start=0.0):
  arrays = fixtures.track_arrays(index, num_frames, seed=seed, audio=audio)
  return tracks_lib.Track(
      video_id="clip", video_path=clip, track_index=index, name=f"clip@part{index}",
      fps=constants.FPS, timestamps=arrays.timestamps + start, frames_224=arrays.frames_224,
      frames_112=arrays.frames_112, landmarks_224=arrays.landmarks,
      transforms_224=np.zeros((num_frames, 2, 3), np.float32),
      transforms_112=np.zeros((num_frames, 2, 3), np.float32), detected=arrays.detected,
      audio=arrays.audio, has_audio=audio, source_size=(320, 240))


def test_report_names_the_least_consistent_seconds(scorer, clip, tmp_path):
  summary = explain.explain_tracks(scorer, clip, [_track(clip, 0, 120),
                                                  _track(clip, 1, 40, audio=False)],
                                   tmp_path, top_k=2, threshold=10.0)
  first, second = summary["tracks"]
  assert first["num_windows"] == 6 and first["flags"] == []
  plan = scoring.plan_windows(120, scorer.spec.window_frames, 6)
  expected = plan.time_ranges(np.arange(120) / constants.FPS)
  assert [(w["start"], w["end"]) for w in first["windows"]] == [
      (round(a, 3), round(b, 3)) for a, b in expected]
  totals = np.array([w["total"] for w in first["windows"]])
  assert sorted(first["flagged_windows"]) == sorted(np.argsort(totals)[:2].tolist())
  assert [w["flagged"] for w in first["windows"]].count(True) == 2
  assert np.allclose(totals, [w["intra"] + w["cross"] for w in first["windows"]])
  # The silent, short track: identity only, fewer windows, both said.
  assert second["has_audio"] is False and second["num_windows"] == 2
  assert any("no audio" in f for f in second["flags"])
  assert any("2 windows instead of 6" in f for f in second["flags"])
  assert "cross_matrix" not in second and second["windows"][0]["cross"] is None
  worst = min((first, second), key=lambda r: r["score"]["total"])
  assert summary["score"]["track"] == worst["track"] and summary["verdict"] == "fake"
  for name in ("report.json", "report.html", "track0_matrices.png", "track0_timeline.png",
               "track1_matrices.png", *(f"track0_window{i}.png" for i in
                                        first["flagged_windows"])):
    assert (tmp_path / name).is_file(), name
  assert json.loads((tmp_path / "report.json").read_text())["score"] == summary["score"]
  page = (tmp_path / "report.html").read_text()
  sources = re.findall(r'src="([^"]*)"', page)
  assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
  assert "2 windows instead of 6" in page and "no audio" in page


def test_a_video_too_short_for_two_windows_is_refused_with_a_report(scorer, clip, tmp_path):
  with pytest.raises(explain.ExplainError, match="too short: 20 frames"):
    explain.explain_tracks(scorer, clip, [_track(clip, 0, 20)], tmp_path)
  report = json.loads((tmp_path / "report.json").read_text())
  assert report["tracks"][0]["status"] == "too_short" and "score" not in report


def test_command_line_says_what_is_missing(tmp_path, capsys):
  video = tmp_path / "v.mp4"
  video.write_bytes(b"")
  assert explain.main([str(video), "--checkpoint", str(tmp_path / "nothing")]) == 2
  assert "not a training workdir" in capsys.readouterr().err
  assert explain.main([str(tmp_path / "missing.mp4"), "--checkpoint", str(tmp_path)]) == 2
  assert "missing.mp4 does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_command_line_on_a_synthetic_video(tmp_path, scorer):
  from data import synth
  summary = synth.generate(synth.Config(out=tmp_path / "synth", identities=2,
                                        videos_per_identity=1, seed=0, layout="fakeavceleb",
                                        fakes_per_video=1, max_seconds=4.0, max_height=360,
                                        workers=1))
  video = sorted(summary.root.rglob("*.mp4"))[0]
  workdir = fixtures.untrained_workdir(tmp_path / "run", scorer.config)
  out = tmp_path / "report"
  assert explain.main([str(video), "--checkpoint", str(workdir), "--out", str(out)]) == 0
  report = json.loads((out / "report.json").read_text())
  assert report["tracks"] and "score" in report
  assert (out / "report.html").is_file() and report["tracks"][0]["windows"][0]["start"] == 0.0
