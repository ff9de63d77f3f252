"""FakeOut's audio enrichment plan for FF++-derived videos, and the span reader."""
import json

import numpy as np
import pytest
import soundfile

from data import constants
from data import datasets
from data import video_writer
from data.datasets import enrichment
from tests import dataset_trees as trees

# FF++ id -> (youtube id, sequence index, YouTube frame numbers); 25 fps in the info jsons.
SEQUENCES = {
    "953": ("Ab3-x_Yy9Qk", 0, list(range(100, 200))),   # 4.0 s from 4.0 s
    "974": ("Bq0wLm7Zt2c", 0, list(range(0, 150))),     # 6.0 s from 0 s
    "026": ("C_9dKkq1Rts", 0, list(range(0, 50))),
    "012": ("C_9dKkq1Rts", 1, list(range(500, 540))),   # 1.6 s from 20 s
}
VERIFIED = {"953", "974", "012"}


@pytest.fixture
def ffpp_root(tmp_path):
  root = trees.make_ffpp(tmp_path / "ff", pairs=(("953", "974"), ("012", "026")),
                         methods=("Deepfakes", "Face2Face"))
  trees.make_ffpp_youtube(root, SEQUENCES, videos=("Ab3-x_Yy9Qk", "Bq0wLm7Zt2c"))
  return root


def _plan(root, split="all", verified=VERIFIED, **kwargs):
  records = datasets.list_videos("ffpp", root, split,
                                 {"methods": "Deepfakes,Face2Face"}).records
  sources = enrichment.YouTubeSources(root, **kwargs)
  return records, {p.video_id: p for p in enrichment.plan_audio(records, sources, verified)}


def test_plan_attaches_the_audio_that_fits_the_lips(ffpp_root):
  _, plans = _plan(ffpp_root)
  real = plans["953"]
  assert real.has_audio and real.youtube_id == "Ab3-x_Yy9Qk"
  assert real.audio_path.endswith("downloaded_videos/Ab3-x_Yy9Qk/Ab3-x_Yy9Qk.mp4")
  assert (real.start, real.duration) == pytest.approx((4.0, 4.0))
  swap = plans["Deepfakes/953_974"]              # face swap: the target's (953) audio
  assert (swap.audio_source_id, swap.start, swap.duration) == ("953", 4.0, 4.0)
  reenact = plans["Face2Face/953_974"]           # reenactment: the source's (974) audio,
  assert (reenact.audio_source_id, reenact.start) == ("974", 0.0)
  assert reenact.duration == pytest.approx(4.0)   # no longer than the target's 4 s video
  assert plans["Face2Face/974_953"].duration == pytest.approx(4.0)


def test_plan_keeps_unverified_and_unavailable_sources_silent(ffpp_root):
  _, plans = _plan(ffpp_root)
  assert not plans["026"].has_audio and "not in the verified list" in plans["026"].reason
  assert not plans["Deepfakes/026_012"].has_audio
  missing_video = plans["Deepfakes/012_026"]
  assert not missing_video.has_audio and missing_video.youtube_id == "C_9dKkq1Rts"
  assert "YouTube video C_9dKkq1Rts not found" in missing_video.reason
  # With the video present, the second sequence of that YouTube video is found by its index.
  trees.touch(ffpp_root / "downloaded_videos" / "C_9dKkq1Rts.webm")
  _, plans = _plan(ffpp_root)
  assert plans["Deepfakes/012_026"].has_audio
  assert (plans["Deepfakes/012_026"].start, plans["Deepfakes/012_026"].duration) == \
      pytest.approx((20.0, 1.6))


def test_plan_uses_the_bundled_verified_list_by_default(ffpp_root):
  records = datasets.list_videos("ffpp", ffpp_root, "all", {"methods": "Deepfakes"}).records
  sources = enrichment.YouTubeSources(ffpp_root)
  plans = {p.video_id: p for p in enrichment.plan_audio(records, sources)}
  # 012 and 026 are in FakeOut's verified list, 953 and 974 are not.
  assert not plans["953"].has_audio and not plans["Deepfakes/953_974"].has_audio
  assert plans["026"].reason.startswith("YouTube video C_9dKkq1Rts not found")


def test_apply_plan_and_plan_csv_round_trip(ffpp_root, tmp_path):
  records, plans = _plan(ffpp_root)
  enriched = {r.video_id: r for r in enrichment.apply_plan(records, plans.values())}
  swap = enriched["Deepfakes/953_974"]
  assert swap.has_audio and swap.audio_start == 4.0 and swap.audio_duration == 4.0
  assert swap.audio_path == plans["Deepfakes/953_974"].audio_path
  assert not enriched["026"].has_audio
  path = enrichment.write_plan(list(plans.values()), tmp_path / "plan.csv")
  assert enrichment.read_plan(path) == list(plans.values())


def test_records_without_an_audio_source_are_left_silent(tmp_path, ffpp_root):
  root = trees.make_celebdf(tmp_path / "cdf")
  record = datasets.list_videos("celebdf", root, "test").records[0]
  [plan] = enrichment.plan_audio([record], enrichment.YouTubeSources(ffpp_root), VERIFIED)
  assert not plan.has_audio and "no audio_source_id" in plan.reason


def test_conversion_dict_is_rebuilt_the_way_ffpp_numbered_sequences(tmp_path):
  # FF++ sorted the folder names "<youtube_id>_<n>" and numbered them 000..999.
  ids = ["--b1Ua-kWJE", "R03Sko97IDE", "_3qHd5fF2SQ", "a1xn-ujCDx8"]
  ids += [f"x{i:010d}" for i in range(995)]
  sequences, counter = {}, 0
  for youtube_id in ids:
    for index in range(2 if youtube_id == "R03Sko97IDE" else 1):
      sequences[f"k{counter}"] = (youtube_id, index, [0, 1])
      counter += 1
  assert counter == 1000
  trees.make_ffpp_youtube(tmp_path, sequences, conversion_dict=False)
  derived = enrichment.derive_conversion_dict(tmp_path / "downloaded_videos_info")
  assert derived["000"] == ("--b1Ua-kWJE", 0)
  assert (derived["001"], derived["002"]) == (("R03Sko97IDE", 0), ("R03Sko97IDE", 1))
  assert derived["003"] == ("_3qHd5fF2SQ", 0)   # '_' sorts after capitals, before lower case
  assert derived["004"] == ("a1xn-ujCDx8", 0)
  (tmp_path / "downloaded_videos_info" / "x0000000000" / "extracted_sequences" /
   "0.json").unlink()
  with pytest.raises(FileNotFoundError, match="999 sequences, not the 1000.*conversion_dict"):
    enrichment.derive_conversion_dict(tmp_path / "downloaded_videos_info")


def test_missing_youtube_material_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="original_youtube_videos_info"):
    enrichment.YouTubeSources(tmp_path)
  bad = trees.touch(tmp_path / "conversion_dict.json", json.dumps({"000": "noindex"}))
  (tmp_path / "downloaded_videos_info").mkdir()
  with pytest.raises(ValueError, match="expected '<youtube_id> <n>'"):
    enrichment.YouTubeSources(tmp_path, conversion_dict=bad)


def test_enrichment_command_writes_the_plan(ffpp_root, tmp_path, capsys):
  out = tmp_path / "plan.csv"
  assert enrichment.main(["--dataset", "ffpp", "--root", str(ffpp_root), "--split", "all",
                          "--option", "methods=Deepfakes", "--out", str(out)]) == 0
  assert "of 8 videos get audio" in capsys.readouterr().out
  assert len(enrichment.read_plan(out)) == 8


# --- reading a span ------------------------------------------------------------------------------

def _click(seconds, at, rate):
  audio = np.zeros(int(seconds * rate), np.float32)
  audio[int(at * rate)] = 1.0
  return audio


def test_read_audio_span_cuts_and_resamples_exactly(tmp_path):
  path = tmp_path / "yt.wav"
  soundfile.write(path, _click(4.0, 3.0, 16_000), 16_000)
  span = enrichment.read_audio_span(path, start=2.8, duration=0.5)   # seeks (start > 1 s)
  assert span.dtype == np.float32 and len(span) == round(0.5 * constants.SAMPLE_RATE)
  assert abs(int(np.argmax(np.abs(span))) - round(0.2 * constants.SAMPLE_RATE)) <= 2
  head = enrichment.read_audio_span(path, start=0.0, duration=None, sample_rate=16_000)
  assert len(head) == 4 * 16_000 and int(np.argmax(head)) == 3 * 16_000
  tail = enrichment.read_audio_span(path, start=3.5, duration=2.0, sample_rate=16_000)
  assert len(tail) == 8_000   # the file ends first: fewer samples, no padding


@pytest.mark.parametrize("suffix,tolerance", [
    (".mp4", 2),     # mp4 keeps sample-exact timestamps and the AAC priming edit
    (".mkv", 45)])   # Matroska timestamps are in milliseconds (44 samples)
def test_read_audio_span_from_a_video_with_aac_audio(tmp_path, suffix, tolerance):
  rate = constants.SAMPLE_RATE
  frames = [np.zeros((32, 32, 3), np.uint8)] * 75
  path = video_writer.write_video(tmp_path / f"yt{suffix}", frames, fps=25,
                                  audio=_click(3.0, 1.5, rate), sample_rate=rate)
  span = enrichment.read_audio_span(path, start=1.2, duration=0.6)
  assert len(span) == round(0.6 * rate)
  assert abs(int(np.argmax(np.abs(span))) - round(0.3 * rate)) <= tolerance


def test_read_audio_span_refuses_silent_files(tmp_path):
  path = video_writer.write_video(tmp_path / "silent.mp4",
                                  [np.zeros((32, 32, 3), np.uint8)] * 3, fps=25)
  with pytest.raises(ValueError, match="has no audio stream"):
    enrichment.read_audio_span(path)
  with pytest.raises(ValueError, match="start must be >= 0"):
    enrichment.read_audio_span(path, start=-1)
