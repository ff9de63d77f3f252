"""The streaming encoder writes files that decode back to the frames and audio given."""
import av
import numpy as np
import pytest

from data import video_writer


def _decode(path):
  with av.open(str(path)) as container:
    frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
  with av.open(str(path)) as container:
    audio = [f.to_ndarray() for f in container.decode(audio=0)] if container.streams.audio else []
  return np.stack(frames), (np.concatenate(audio, axis=1) if audio else None)


@pytest.mark.parametrize("suffix,codec,audio_codec", [
    (".mp4", "libx264", "aac"), (".mkv", "libx264", "aac"), (".mov", "libx264", "aac"),
    (".avi", "mpeg4", "mp3"), (".webm", "libvpx-vp9", "libopus")])
def test_roundtrip_containers(tmp_path, suffix, codec, audio_codec):
  rate = 48_000 if audio_codec == "libopus" else 44_100
  frames = [np.full((64, 96, 3), 20 * i, np.uint8) for i in range(10)]
  t = np.arange(rate) / rate
  audio = 0.3 * np.sin(2 * np.pi * 440 * t)
  path = video_writer.write_video(tmp_path / f"clip{suffix}", frames, fps=25, audio=audio,
                                  sample_rate=rate, video_codec=codec, audio_codec=audio_codec)
  decoded, decoded_audio = _decode(path)
  assert decoded.shape == (10, 64, 96, 3)
  np.testing.assert_allclose(decoded.mean(axis=(1, 2, 3)), [20 * i for i in range(10)], atol=4)
  assert decoded_audio is not None
  # Encoders add priming samples; the tone must be there at the right level.
  assert abs(decoded_audio.shape[1] - rate) < 0.1 * rate
  assert 0.15 < np.sqrt(np.mean(decoded_audio[0, 5000:-5000] ** 2)) < 0.26


def test_silent_video_has_no_audio_stream(tmp_path):
  path = video_writer.write_video(tmp_path / "silent.mp4",
                                  (np.zeros((32, 32, 3), np.uint8) for _ in range(3)), fps=29)
  decoded, audio = _decode(path)
  assert decoded.shape[0] == 3 and audio is None


def test_bad_inputs_raise_clearly(tmp_path):
  with pytest.raises(ValueError, match="even frame size"):
    video_writer.VideoWriter(tmp_path / "odd.mp4", 29, (33, 32))
  with pytest.raises(ValueError, match="no frames"):
    video_writer.write_video(tmp_path / "empty.mp4", [], fps=29)
  with pytest.raises(ValueError, match="uint8 RGB frame"):
    video_writer.write_video(tmp_path / "wrong.mp4", [np.zeros((32, 32), np.uint8)], fps=29)
  assert not (tmp_path / "wrong.mp4").exists()


def test_odd_size_with_rgb_codec(tmp_path):
  frames = [np.random.default_rng(0).integers(0, 255, (33, 47, 3), dtype=np.uint8)] * 2
  path = video_writer.write_video(tmp_path / "odd.mkv", frames, fps=29, video_codec="libx264rgb")
  decoded, _ = _decode(path)
  assert decoded.shape == (2, 33, 47, 3)
