"""Streaming video + audio encoding with PyAV (its bundled FFmpeg; no system ffmpeg needed).

Used for the per-track inspection videos of the face tracker, the synthetic data set and the
compression study. Frames are written one at a time, so memory does not grow with length.
"""
from __future__ import annotations

import pathlib
from typing import Iterable, Optional

import av
import numpy as np

from data import constants

# codec -> (pixel format, encoder options). yuv420p needs even frame sizes; the others do not.
_VIDEO_CODECS = {
    "libx264": ("yuv420p", {"preset": "veryfast"}),
    "libx264rgb": ("rgb24", {"preset": "veryfast"}),
    "mpeg4": ("yuv420p", {}),
    "libvpx-vp9": ("yuv420p", {"deadline": "realtime", "cpu-used": "8"}),
}
_AUDIO_CODECS = ("aac", "libopus", "libvorbis", "pcm_s16le", "mp3")


class VideoWriter:
  """Writes RGB uint8 frames and optional mono/stereo float audio to one container file.

  Example::

    with VideoWriter("out.mp4", fps=29, size=(224, 224), sample_rate=44100) as writer:
      for frame in frames:
        writer.write_frame(frame)
      writer.write_audio(waveform)

  Args:
    path: output file; the container is chosen from its suffix (.mp4, .mkv, .avi, .mov, .webm).
    fps: frame rate (an integer or a fraction such as 30000/1001 given as a float).
    size: (width, height) of every frame.
    sample_rate: audio sample rate, or None for a silent video without an audio stream.
    audio_channels: 1 or 2.
    crf: H.264/VP9 constant rate factor (lower is better quality; 23 is FFmpeg's default).
    video_codec / audio_codec: FFmpeg encoder names.
    deterministic: libx264 only: turn off the macroblock-tree rate control, whose output was
      measured to depend on the process's earlier memory use (6 bitstreams in 6 runs of the same
      frames); with it off the same frames always give the same file, at a slightly higher
      bitrate for the same CRF.
  """

  def __init__(self, path: str | pathlib.Path, fps: float, size: tuple[int, int],
               sample_rate: Optional[int] = constants.SAMPLE_RATE, audio_channels: int = 1,
               crf: int = 18, video_codec: str = "libx264", audio_codec: str = "aac",
               deterministic: bool = True):
    if video_codec not in _VIDEO_CODECS:
      raise ValueError(f"video_codec must be one of {sorted(_VIDEO_CODECS)}, got {video_codec!r}")
    if audio_codec not in _AUDIO_CODECS:
      raise ValueError(f"audio_codec must be one of {_AUDIO_CODECS}, got {audio_codec!r}")
    width, height = int(size[0]), int(size[1])
    pix_fmt, options = _VIDEO_CODECS[video_codec]
    if pix_fmt == "yuv420p" and (width % 2 or height % 2):
      raise ValueError(f"{video_codec} with yuv420p needs an even frame size, got {width}x{height}"
                       " (use video_codec='libx264rgb' for odd sizes)")
    if fps <= 0:
      raise ValueError(f"fps must be positive, got {fps}")
    self.path = pathlib.Path(path)
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self._size = (width, height)
    self._container = av.open(str(self.path), mode="w")
    rate = _as_fraction(fps)
    self._video = self._container.add_stream(video_codec, rate=rate)
    self._video.width, self._video.height, self._video.pix_fmt = width, height, pix_fmt
    self._video.options = ({**options, "crf": str(crf)} if video_codec != "mpeg4"
                           else {"qscale": "3"})
    if deterministic and video_codec.startswith("libx264"):
      self._video.options = {**self._video.options, "x264-params": "mbtree=0"}
    self._video.codec_context.time_base = 1 / rate
    self._audio = None
    if sample_rate is not None:
      if audio_channels not in (1, 2):
        raise ValueError(f"audio_channels must be 1 or 2, got {audio_channels}")
      self._audio = self._container.add_stream(audio_codec, rate=int(sample_rate))
      self._audio.layout = "mono" if audio_channels == 1 else "stereo"
      self._audio_channels = audio_channels
      self._audio_pts = 0
    self._frame_index = 0

  def write_frame(self, frame: np.ndarray) -> None:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.shape != (self._size[1], self._size[0], 3):
      raise ValueError(f"expected a uint8 RGB frame of shape {(self._size[1], self._size[0], 3)},"
                       f" got {frame.dtype} {frame.shape}")
    video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
    video_frame.pts = self._frame_index
    self._frame_index += 1
    for packet in self._video.encode(video_frame):
      self._container.mux(packet)

  def write_frames(self, frames: Iterable[np.ndarray]) -> None:
    for frame in frames:
      self.write_frame(frame)

  def write_audio(self, samples: np.ndarray) -> None:
    """Appends float audio in [-1, 1]: shape [num_samples] or [num_samples, channels]."""
    if self._audio is None:
      raise ValueError(f"{self.path} was opened without audio (sample_rate=None)")
    samples = np.asarray(samples, np.float32)
    if samples.ndim == 1:
      samples = samples[:, None]
    if samples.ndim != 2 or samples.shape[1] not in (1, 2):
      raise ValueError(f"audio must be [n] or [n, channels], got shape {samples.shape}")
    if samples.shape[1] != self._audio_channels:
      samples = (np.repeat(samples, self._audio_channels, axis=1) if samples.shape[1] == 1
                 else samples.mean(axis=1, keepdims=True))
    if not samples.size:
      return
    audio_frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(np.clip(samples, -1.0, 1.0).T), format="fltp",
        layout=self._audio.layout.name)
    audio_frame.sample_rate = self._audio.rate
    audio_frame.pts = self._audio_pts
    self._audio_pts += samples.shape[0]
    for packet in self._audio.encode(audio_frame):
      self._container.mux(packet)

  def close(self) -> None:
    if self._container is None:
      return
    for packet in self._video.encode():
      self._container.mux(packet)
    if self._audio is not None:
      for packet in self._audio.encode():
        self._container.mux(packet)
    self._container.close()
    self._container = None

  def __enter__(self) -> "VideoWriter":
    return self

  def __exit__(self, exc_type, exc, tb) -> None:
    self.close()
    if exc_type is not None:
      self.path.unlink(missing_ok=True)  # never leave a half-written file that looks complete


def write_video(path: str | pathlib.Path, frames: Iterable[np.ndarray], fps: float,
                audio: Optional[np.ndarray] = None,
                sample_rate: int = constants.SAMPLE_RATE, **kwargs) -> pathlib.Path:
  """Writes a whole clip; `frames` may be a generator (the size is taken from the first frame)."""
  iterator = iter(frames)
  try:
    first = np.asarray(next(iterator))
  except StopIteration:
    raise ValueError(f"no frames to write to {path}") from None
  channels = 1 if audio is None or np.ndim(audio) == 1 else np.shape(audio)[1]
  with VideoWriter(path, fps, (first.shape[1], first.shape[0]),
                   sample_rate=sample_rate if audio is not None else None,
                   audio_channels=channels, **kwargs) as writer:
    writer.write_frame(first)
    writer.write_frames(iterator)
    if audio is not None:
      writer.write_audio(audio)
  return pathlib.Path(path)


def _as_fraction(fps: float):
  from fractions import Fraction
  return Fraction(fps).limit_denominator(1001)
