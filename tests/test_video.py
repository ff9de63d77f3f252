"""Decoding and standardisation: every container, 29 fps by timestamps, audio, bad files."""
import math

import av
import numpy as np
import pytest

from data import constants
from data import video
from data import video_writer
from tests import video_fixtures as vf


def _numbered(count, size=(96, 64)):
  return [vf.numbered_frame(n, size) for n in range(count)]


def _expected_sources(times, count, fps=constants.FPS):
  """Index of the source frame on screen at each output time (sample and hold)."""
  return [max(i for i, t in enumerate(times) if t <= j / fps + 1e-6) for j in range(count)]


@pytest.mark.parametrize("suffix,codec,audio_codec", [
    (".mp4", "libx264", "aac"), (".mov", "libx264", "aac"), (".mkv", "libx264", "aac"),
    (".avi", "mpeg4", "mp3"), (".webm", "libvpx-vp9", "libopus")])
def test_containers_resample_to_29_fps(tmp_path, suffix, codec, audio_codec):
  rate = 48_000
  path = video_writer.write_video(tmp_path / f"clip{suffix}", _numbered(50), fps=25,
                                  audio=vf.tone(2.0, rate)[:, 0], sample_rate=rate,
                                  video_codec=codec, audio_codec=audio_codec)
  info = video.probe(path)
  assert (info.width, info.height, info.rotation) == (96, 64, 0)
  assert info.has_audio and info.source_fps == pytest.approx(25, abs=0.1)
  frames = list(video.iter_frames(path))
  # The source timestamps as the demuxer reports them (AVI shifts all but the first by one
  # frame); the standardised frames must follow them.
  with av.open(str(path)) as container:
    times = [float(f.time) for f in container.decode(video=0)]
  expected_count = math.ceil((times[-1] + 1 / 25) * 29 - 1e-6)
  assert len(frames) == expected_count and abs(expected_count - 58) <= 2   # 2 s at 29 fps
  assert [f.index for f in frames] == list(range(len(frames)))
  np.testing.assert_allclose([f.time for f in frames], np.arange(len(frames)) / 29)
  shown = [vf.read_number(f.image) for f in frames]
  assert shown == _expected_sources(times, len(frames))


def test_variable_frame_rate_follows_timestamps(tmp_path):
  times, t = [], 0.0
  while t < 2.0:                                 # alternating 50 ms and 22 ms frames
    times.append(t)
    t += 0.05 if len(times) % 2 else 1 / 45
  path = vf.write_frames(tmp_path / "vfr.mkv", _numbered(len(times)), times)
  frames = list(video.iter_frames(path))
  assert len(frames) == video.count_frames(path)
  assert abs(len(frames) - 2.0 * 29) <= 1
  assert [vf.read_number(f.image) for f in frames] == _expected_sources(times, len(frames))


@pytest.mark.parametrize("rotation", [90, 270, 180])
def test_rotation_metadata_is_applied(tmp_path, rotation):
  shown = [vf.ONE_FACE.frame(n / 30) for n in range(6)]
  path = vf.write_frames(tmp_path / "rotated.mp4", shown, [n / 30 for n in range(6)],
                         rotation=rotation)
  info = video.probe(path)
  assert info.rotation == rotation and (info.width, info.height) == (320, 240)
  frames = list(video.iter_frames(path))
  assert frames[0].image.shape == (240, 320, 3)
  assert np.abs(frames[0].image.astype(int) - shown[0]).mean() < 4


def test_odd_size_and_shrinking(tmp_path):
  rng = np.random.default_rng(0)
  frames = [rng.integers(0, 255, (33, 47, 3), dtype=np.uint8)] * 3
  path = video_writer.write_video(tmp_path / "odd.mkv", frames, fps=29, video_codec="libx264rgb")
  decoded = list(video.iter_frames(path))
  assert len(decoded) == 3 and decoded[0].image.shape == (33, 47, 3)
  small = list(video.iter_frames(path, max_side=20))
  assert small[0].image.shape == (14, 20, 3)


def test_stride_and_max_seconds(tmp_path):
  path = video_writer.write_video(tmp_path / "c.mp4", _numbered(60), fps=30)
  stream = video.FrameStream(path, stride=3, max_seconds=1.0)
  indices = [f.index for f in stream]
  assert indices == list(range(0, 29, 3)) and stream.num_frames == 29
  assert video.count_frames(path) == 58


def test_audio_first_channel_44k_on_video_time_line(tmp_path):
  # 48 kHz stereo: a 440 Hz tone with a burst at 1.0 s on the first channel, 880 Hz on the
  # second. The standardised track is the first channel at 44.1 kHz, burst at 1.0 s.
  audio = vf.tone(2.0, 48_000, channels=2, burst_at=1.0)
  path = video_writer.write_video(tmp_path / "a.mp4", _numbered(60), fps=30, audio=audio,
                                  sample_rate=48_000)
  samples = video.read_audio(path)
  assert samples.dtype == np.float32 and samples.ndim == 1
  assert abs(len(samples) - 2 * constants.SAMPLE_RATE) < 0.02 * constants.SAMPLE_RATE
  onset = np.argmax(np.abs(samples) > 0.5) / constants.SAMPLE_RATE
  assert onset == pytest.approx(1.0, abs=0.005)
  quiet = samples[:int(0.9 * constants.SAMPLE_RATE)]
  spectrum = np.abs(np.fft.rfft(quiet))
  peak = np.argmax(spectrum) * constants.SAMPLE_RATE / len(quiet)
  assert peak == pytest.approx(440, abs=3)       # the first channel, not the second's 880 Hz
  span = video.read_audio(path, start=0.5, end=1.5)
  assert len(span) == pytest.approx(constants.SAMPLE_RATE, abs=2)
  np.testing.assert_allclose(span[:1000], samples[22050:23050], atol=1e-6)


def test_missing_audio_is_flagged(tmp_path):
  path = video_writer.write_video(tmp_path / "silent.mp4", _numbered(10), fps=29)
  assert not video.probe(path).has_audio
  assert video.read_audio(path) is None and video.iter_audio(path) is None


def _cut(path, share=0.5):
  data = path.read_bytes()
  out = path.with_name("cut_" + path.name)
  out.write_bytes(data[:int(len(data) * share)])
  return out


@pytest.mark.parametrize("suffix,codec", [(".mp4", "libx264"), (".mkv", "libx264"),
                                          (".webm", "libvpx-vp9"), (".avi", "mpeg4")])
def test_truncated_files(tmp_path, suffix, codec):
  full = video_writer.write_video(tmp_path / f"full{suffix}", _numbered(60), fps=30,
                                  audio=vf.tone(2.0)[:, 0] if suffix in (".mp4", ".mkv")
                                  else None, sample_rate=48_000, video_codec=codec)
  with pytest.raises(video.TruncatedVideoError, match="truncated") as error:
    video.count_frames(_cut(full))
  assert error.value.reason == "truncated"


def test_bad_inputs_raise_typed_errors(tmp_path):
  text = tmp_path / "notes.mp4"
  text.write_text("this is not a video\n" * 20)
  empty = tmp_path / "empty.mp4"
  empty.touch()
  audio_path = vf.audio_only(tmp_path / "audio.m4a")
  cases = {text: ("not_a_video", video.NotAVideoError),
           empty: ("empty_file", video.EmptyFileError),
           tmp_path / "missing.mp4": ("not_a_video", video.NotAVideoError),
           audio_path: ("no_video_stream", video.NoVideoStreamError),
           vf.garbage_video(tmp_path / "garbage.mp4"): ("no_frames", video.NoFramesError)}
  for path, (reason, error_type) in cases.items():
    for call in (video.probe, video.count_frames):
      with pytest.raises(error_type) as error:
        call(path)
      assert error.value.reason == reason and str(path) in str(error.value)
