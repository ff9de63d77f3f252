"""data.prepare end to end on a tiny FaceForensics++ tree of real generated videos."""
import json

import numpy as np
import pytest

from data import prepare, records
from tests import video_fixtures


@pytest.fixture(scope="module")
def ffpp_root(tmp_path_factory):
  """FF++ layout: reals 000, 001 (one face, a tone), fake Deepfakes/000_001, a broken file."""
  root = tmp_path_factory.mktemp("ffpp")
  originals = root / "original_sequences" / "youtube" / "c23" / "videos"
  fakes = root / "manipulated_sequences" / "Deepfakes" / "c23" / "videos"
  scene = video_fixtures.Scene((320, 240), 1.2, video_fixtures.ONE_FACE.faces)
  for name in ("000", "001"):
    video_fixtures.write_scene(originals / f"{name}.mp4", scene, fps=25,
                               audio=video_fixtures.tone(1.2))
  video_fixtures.write_scene(fakes / "000_001.mp4", scene, fps=25)
  video_fixtures.garbage_video(fakes / "001_000.mp4")
  (root / "splits").mkdir()
  (root / "splits" / "test.json").write_text(json.dumps([["000", "001"]]))
  return root


def _prepare(root, out, **kw):
  # FF++ is silent unless enriched; audio=probe makes the adapter keep each file's own audio.
  return prepare.prepare("ffpp", str(root), "test", out, workers=0, videos_per_shard=2,
                         dataset_options={"audio": "probe"}, **kw)


def test_prepare_writes_shards_manifest_and_resumes(ffpp_root, tmp_path):
  out = tmp_path / "records"
  summary = _prepare(ffpp_root, out)
  assert summary["videos"] == 4 and summary["shards"] == summary["shards_complete"] == 2
  assert summary["status"] == {"ok": 3, "error": 1}
  assert list(summary["errors"]) == ["Deepfakes/001_000"]
  manifest = {json.loads(line)["input"]: json.loads(line)
              for line in (out / "test.manifest.jsonl").read_text().splitlines()}
  assert manifest["Deepfakes/001_000"]["reason"] and manifest["000"]["status"] == "ok"

  tracks = {t["video/id"].decode(): t for t in records.read_tracks(out)}
  assert sorted(tracks) == ["000", "001", "Deepfakes/000_001"]
  real, fake = tracks["000"], tracks["Deepfakes/000_001"]
  assert real["label"] == 0 and fake["label"] == 1 and fake["method"] == b"Deepfakes"
  assert real["audio/has_audio"] == 1 and fake["audio/has_audio"] == 0
  n = len(real["image/encoded"])
  assert n == pytest.approx(1.2 * 29, abs=1)
  assert real["audio"].size == pytest.approx(n / 29 * 44100, abs=2)
  face = records.decode_frames(real["image/encoded"], [0]).numpy()
  assert face.shape == (1, 224, 224, 3) and face.std() > 10
  assert records.decode_frames(real["image_112/encoded"], [0]).numpy().shape == (1, 112, 112, 3)
  assert records.decode_landmarks(real["frame/landmarks"]).numpy().shape == (n, 478, 3)

  # A crashed run leaves a partial shard: only that one is redone; finished ones are kept.
  shards = sorted(out.glob("test-*.tfrecord"))
  kept_mtime = shards[0].stat().st_mtime_ns
  shards[1].unlink()
  again = _prepare(ffpp_root, out)
  assert again["shards_complete"] == 2 and shards[0].stat().st_mtime_ns == kept_mtime
  assert sorted(t["video/id"].decode() for t in records.read_tracks(out)) == sorted(tracks)


def test_audio_plan_replaces_the_audio_of_planned_videos(ffpp_root, tmp_path):
  """FakeOut's enrichment: a fake gets a span of another file; an unverified video none."""
  from data.datasets import enrichment
  donor = video_fixtures.write_scene(tmp_path / "youtube.mp4", video_fixtures.NO_FACE, fps=25,
                                     audio=video_fixtures.tone(3.0, burst_at=1.5))
  plan = tmp_path / "plan.csv"
  enrichment.write_plan([
      enrichment.AudioPlan(video_id="Deepfakes/000_001", has_audio=True, audio_path=str(donor),
                           start=1.0, duration=1.2, audio_source_id="000",
                           youtube_id="yt", reason="target audio"),
      enrichment.AudioPlan(video_id="001", has_audio=False, audio_path="", start=0.0,
                           duration=0.0, audio_source_id="001", youtube_id="",
                           reason="not verified")], plan)
  prepare.prepare("ffpp", str(ffpp_root), "test", tmp_path / "out", workers=0,
                  videos_per_shard=4, dataset_options={"audio": "probe"}, audio_plan=str(plan))
  tracks = {t["video/id"].decode(): t for t in records.read_tracks(tmp_path / "out")}
  fake, silent = tracks["Deepfakes/000_001"], tracks["001"]
  assert fake["audio/has_audio"] == 1 and silent["audio/has_audio"] == 0
  # The donor's burst at 1.5 s lands 0.5 s into the fake's audio (span starts at 1.0 s).
  loud = np.flatnonzero(np.abs(fake["audio"]) > 0.5)
  assert loud.size and abs(loud[0] / 44100 - 0.5) < 0.02


@pytest.mark.slow
def test_beam_runner_writes_the_same_records(ffpp_root, tmp_path):
  direct, beam = tmp_path / "direct", tmp_path / "beam"
  _prepare(ffpp_root, direct)
  summary = _prepare(ffpp_root, beam, runner="beam", beam_args=["--runner=DirectRunner"])
  assert summary["shards_complete"] == 2
  first = {t["video/id"]: t for t in records.read_tracks(direct)}
  second = {t["video/id"]: t for t in records.read_tracks(beam)}
  assert first.keys() == second.keys()
  for key in first:
    np.testing.assert_array_equal(first[key]["frame/landmarks"], second[key]["frame/landmarks"])


def test_tracker_flags_reach_the_tracker_and_the_summary(ffpp_root, tmp_path, monkeypatch):
  """--detector / --schedule / --keyframe-interval / --people-count reach the TrackerOptions
  prepare() tracks with (and records in its summary's 'tracker'); keras stays the default."""
  seen = {}

  def fake_prepare(dataset, root, split, out, *, options, **kw):
    seen["tracker"] = options.tracker
    return {"status": {"ok": 1}, "errors": {}, "shards": 1, "shards_complete": 1}
  monkeypatch.setattr(prepare, "prepare", fake_prepare)
  code = prepare.main(["--dataset", "ffpp", "--root", str(ffpp_root), "--split", "test",
                       "--out", str(tmp_path / "out"), "--detector", "jax", "--schedule",
                       "keyframe", "--keyframe-interval", "7", "--people-count", "robust"])
  assert code == 0
  tracker = seen["tracker"]
  assert (tracker.detector, tracker.schedule, tracker.keyframe_interval,
          tracker.people_count) == ("jax", "keyframe", 7, "robust")
  assert prepare.parse_args(["--dataset", "ffpp", "--root", "r", "--split", "s", "--out",
                             "o"])[0].detector == "keras"          # the authors' default
