"""Decoding and standardisation of videos with PyAV (its bundled FFmpeg; no system ffmpeg).

Every video is brought to the paper's standard (FakeOut Sec. 3.3): frames at `constants.FPS`
and audio at `constants.SAMPLE_RATE`, resampled on the fly, never re-encoded to disk.

* :func:`probe` opens a file, checks that it holds decodable video and describes it.
* :func:`iter_frames` streams standardised RGB frames; memory does not grow with length.
  Resampling follows the timestamps (variable frame rate is fine): output frame ``j`` shows
  the source frame on screen at ``j / fps`` seconds after the first frame, so frames are
  repeated or dropped as needed. The display matrix (rotation metadata) is applied.
* :func:`iter_audio` / :func:`read_audio` give the first audio channel as float32 at 44.1 kHz
  on the same time line as the frames (sample 0 = first video frame), or None without audio.

Bad inputs raise a :class:`VideoError` subclass whose ``reason`` is a short code (for
manifests) and whose message says which file, what was wrong and what to do.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import pathlib
from typing import Iterator, Optional

import av
import numpy as np

from data import constants

log = logging.getLogger(__name__)

# A few broken packets are normal in real-world files (FFmpeg skips them too); more than this
# many means the stream is corrupt.
MAX_DECODE_ERRORS = 20
# Decoding less than this share of the duration the video stream declares means the file was
# cut short.
MIN_DECODED_SHARE = 0.9
_EPS = 1e-6

# First bytes of the containers we know: a file that starts like one of these but cannot be
# read is truncated or corrupt rather than "not a video".
_SIGNATURES = ((4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"),
               (0, b"\x1a\x45\xdf\xa3"), (0, b"RIFF"), (0, b"FLV"), (0, b"OggS"),
               (0, b"\x00\x00\x01\xba"), (0, b"\x30\x26\xb2\x75"))


class VideoError(Exception):
  """A video that cannot be used. ``reason`` is a short code, the message says what to do."""
  reason = "video_error"

  def __init__(self, path, message: str):
    super().__init__(f"{path}: {message}")
    self.path = str(path)


class EmptyFileError(VideoError):
  reason = "empty_file"


class NotAVideoError(VideoError):
  reason = "not_a_video"


class TruncatedVideoError(VideoError):
  reason = "truncated"


class NoVideoStreamError(VideoError):
  reason = "no_video_stream"


class NoFramesError(VideoError):
  reason = "no_frames"


class CorruptVideoError(VideoError):
  reason = "decode_error"


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """What :func:`probe` learns about a file. Sizes are as displayed (rotation applied)."""
  path: str
  width: int
  height: int
  rotation: int             # degrees counter-clockwise applied to the decoded frames
  source_fps: float         # the stream's average frame rate (0 if unknown)
  duration: float           # seconds of video, from the stream or container header
  start_time: float         # presentation time of the first video frame, seconds
  has_audio: bool
  audio_sample_rate: Optional[int]
  audio_channels: Optional[int]
  video_codec: str
  container: str

  def num_frames(self, fps: float = constants.FPS) -> int:
    """Standardised frame count expected from the declared duration (decoding is exact)."""
    return max(1, math.ceil(self.duration * fps - _EPS))


@dataclasses.dataclass
class Frame:
  """One standardised frame: ``index`` on the `fps` grid, ``time`` = index / fps seconds."""
  index: int
  time: float
  image: np.ndarray         # RGB uint8 [H, W, 3]


def _looks_like_media(path: pathlib.Path) -> bool:
  with open(path, "rb") as f:
    head = f.read(16)
  return any(head[offset:offset + len(magic)] == magic for offset, magic in _SIGNATURES)


def _open(path) -> av.container.InputContainer:
  """Opens `path` for reading, translating every failure into a typed VideoError."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise NotAVideoError(path, "no such file (check the path)")
  if path.stat().st_size == 0:
    raise EmptyFileError(path, "the file is empty (0 bytes); re-download or re-export it")
  try:
    return av.open(str(path), metadata_errors="ignore")
  except av.error.FFmpegError as e:
    if _looks_like_media(path):
      raise TruncatedVideoError(
          path, f"starts like a media file but cannot be read ({e}); it is probably truncated"
          " or corrupt: re-download or re-export it") from None
    raise NotAVideoError(path, f"not a readable video file ({e})") from None


def _video_stream(container, path) -> av.video.stream.VideoStream:
  if not container.streams.video:
    raise NoVideoStreamError(path, "the file has no video stream (audio only?)")
  return container.streams.video[0]


def _stream_duration(stream, container) -> Optional[float]:
  """Duration the header declares for the video stream, or None if it does not say."""
  if stream.duration is not None and stream.time_base is not None:
    return float(stream.duration * stream.time_base)
  tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
  if tag:  # Matroska writes per-stream durations as tags, "HH:MM:SS.nnnnnnnnn"
    try:
      hours, minutes, seconds = tag.split(":")
      return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
      pass
  # A container duration covers every stream; only trust it when video is the only one.
  if container.duration is not None and len(container.streams) == 1:
    return container.duration / av.time_base
  return None


def _check_complete(path, stream, container, decoded: int, end: float) -> None:
  """Raises TruncatedVideoError when the header promised much more than could be decoded."""
  declared_frames = stream.frames or 0
  if declared_frames and decoded < MIN_DECODED_SHARE * declared_frames - 2:
    raise TruncatedVideoError(path, f"only {decoded} of the {declared_frames} frames the header"
                              " declares could be decoded; the file is probably truncated")
  declared = _stream_duration(stream, container)
  if declared and end < MIN_DECODED_SHARE * declared - 0.5:
    raise TruncatedVideoError(path, f"only {end:.2f} s of the declared {declared:.2f} s could"
                              " be decoded; the file is probably truncated")
  # A container duration covers every stream (audio may run longer than video), so only a
  # gross shortfall counts.
  if (declared is None and container.duration and
      end < 0.5 * container.duration / av.time_base - 0.5):
    raise TruncatedVideoError(path, f"only {end:.2f} s of the file's declared"
                              f" {container.duration / av.time_base:.2f} s could be decoded;"
                              " the file is probably truncated")


def _decoded_frames(container, stream, path) -> Iterator[av.VideoFrame]:
  """Decodes packet by packet, skipping a few broken packets as FFmpeg does."""
  errors = produced = 0
  last_error = None
  packets = container.demux(stream)
  while True:
    try:
      packet = next(packets)
    except StopIteration:
      break
    except av.error.FFmpegError as e:  # the demuxer cannot go on: the rest of the file is lost
      raise TruncatedVideoError(path, f"reading stopped early ({e}); the file is probably"
                                " truncated: re-download or re-export it") from None
    try:
      frames = packet.decode()
    except av.error.FFmpegError as e:
      errors += 1
      last_error = e
      if errors > MAX_DECODE_ERRORS:
        error = NoFramesError if not produced else CorruptVideoError
        raise error(path, f"more than {MAX_DECODE_ERRORS} video packets failed to decode"
                    f"{'' if produced else ' and none gave a frame'} (last: {e}); the video"
                    " stream is corrupt") from None
      continue
    produced += len(frames)
    yield from frames
  if errors:
    log.warning("%s: skipped %d video packets that failed to decode (last: %s)", path, errors,
                last_error)


def probe(path) -> VideoInfo:
  """Opens `path`, decodes its first frame and describes it. Raises a VideoError if unusable."""
  path = pathlib.Path(path)
  with _open(path) as container:
    stream = _video_stream(container, path)
    first = next(_decoded_frames(container, stream, path), None)
    if first is None:
      raise NoFramesError(path, "the video stream holds no decodable frame")
    rotation = _normalise_rotation(first.rotation)
    width, height = first.width, first.height
    if rotation in (90, 270):
      width, height = height, width
    duration = _stream_duration(stream, container)
    if duration is None and container.duration is not None:
      duration = container.duration / av.time_base
    rate = stream.average_rate or stream.guessed_rate
    audio = container.streams.audio[0] if container.streams.audio else None
    return VideoInfo(
        path=str(path), width=width, height=height, rotation=rotation,
        source_fps=float(rate) if rate else 0.0,
        duration=float(duration) if duration else 0.0,
        start_time=float(first.time) if first.time is not None else 0.0,
        has_audio=audio is not None,
        audio_sample_rate=audio.rate if audio is not None else None,
        audio_channels=audio.channels if audio is not None else None,
        video_codec=stream.codec_context.name, container=container.format.name)


def _normalise_rotation(rotation) -> int:
  """The display matrix angle rounded to a multiple of 90 in [0, 360)."""
  return int(round((rotation or 0) / 90.0)) * 90 % 360


def _to_rgb(frame: av.VideoFrame, rotation: int, max_side: Optional[int]) -> np.ndarray:
  """Converts a decoded frame to displayed RGB, shrunk (never enlarged) to `max_side`."""
  width, height = frame.width, frame.height
  if max_side and max(width, height) > max_side:
    scale = max_side / max(width, height)
    width, height = max(1, round(width * scale)), max(1, round(height * scale))
    image = frame.reformat(width=width, height=height, format="rgb24",
                           interpolation="AREA").to_ndarray()
  else:
    image = frame.to_ndarray(format="rgb24")
  if rotation:
    image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
  return image


class FrameStream:
  """The standardised frames of a video, streamed; iterate it once.

  Args:
    path: any container/codec FFmpeg reads (mp4, avi, mov, mkv, webm, ...).
    fps: output frame rate; frames are repeated or dropped following the timestamps.
    max_seconds: stop after this many seconds (None: the whole video).
    stride: only frames whose index is a multiple of `stride` are converted and yielded
      (the others are still decoded, which H.264 needs, but cost no colour conversion).
    max_side: shrink frames so that their longer side is at most this (None: full size).

  Iterating yields Frame(index, time, image) with image RGB uint8 [H, W, 3] as displayed;
  afterwards `num_frames` is the number of standardised frames of the (possibly cut) video.
  Raises VideoError subclasses: not a video, empty, truncated, no video stream, no decodable
  frame, corrupt stream.
  """

  def __init__(self, path, *, fps: float = constants.FPS, max_seconds: Optional[float] = None,
               stride: int = 1, max_side: Optional[int] = None):
    if stride < 1:
      raise ValueError(f"stride must be >= 1, got {stride}")
    if fps <= 0:
      raise ValueError(f"fps must be positive, got {fps}")
    self.path = pathlib.Path(path)
    self.fps, self.max_seconds, self.stride, self.max_side = fps, max_seconds, stride, max_side
    self.num_frames = 0

  def __iter__(self) -> Iterator[Frame]:
    path, fps, stride, max_side = self.path, self.fps, self.stride, self.max_side
    limit = math.inf if self.max_seconds is None else self.max_seconds
    with _open(path) as container:
      stream = _video_stream(container, path)
      stream.thread_type = "AUTO"
      rate = stream.average_rate or stream.guessed_rate
      default_step = 1.0 / float(rate) if rate else 1.0 / fps
      start = None          # time of the first frame
      held = None           # (frame, relative time): on screen until the next one
      held_image = None     # its conversion, reused when the frame is repeated
      rotation = 0
      decoded = 0

      def emit_until(end_time):
        """Yields the held frame for every output index whose time falls before end_time."""
        nonlocal held_image
        while (self.num_frames / fps < end_time - _EPS and
               self.num_frames / fps < limit - _EPS):
          index = self.num_frames
          self.num_frames += 1
          if index % stride == 0:
            if held_image is None:
              held_image = _to_rgb(held[0], rotation, max_side)
            yield Frame(index, index / fps, held_image)

      for frame in _decoded_frames(container, stream, path):
        time = frame.time if frame.time is not None else decoded * default_step
        decoded += 1
        if start is None:
          start, rotation = time, _normalise_rotation(frame.rotation)
        relative = time - start
        if held is not None and relative <= held[1] + _EPS:
          continue          # a repeated or out-of-order timestamp: keep the frame on screen
        if held is not None:
          yield from emit_until(relative)
          if self.num_frames / fps >= limit - _EPS:
            return
        held, held_image = (frame, relative), None
      if held is None:
        raise NoFramesError(path, "the video stream holds no decodable frame")
      last = held[0]
      step = (float(last.duration * last.time_base)
              if last.duration and last.time_base else default_step)
      end = held[1] + step
      if end < limit:
        _check_complete(path, stream, container, decoded, end)
      yield from emit_until(max(end, 1.0 / fps))


def iter_frames(path, *, fps: float = constants.FPS, max_seconds: Optional[float] = None,
                stride: int = 1, max_side: Optional[int] = None) -> Iterator[Frame]:
  """Streams standardised frames; see :class:`FrameStream` for the arguments."""
  return iter(FrameStream(path, fps=fps, max_seconds=max_seconds, stride=stride,
                          max_side=max_side))


def count_frames(path, *, fps: float = constants.FPS,
                 max_seconds: Optional[float] = None) -> int:
  """Number of standardised frames, by decoding (exact, no colour conversion)."""
  stream = FrameStream(path, fps=fps, max_seconds=max_seconds, stride=1 << 30)
  for _ in stream:
    pass
  return stream.num_frames


def iter_audio(path, *, sample_rate: int = constants.SAMPLE_RATE, start: float = 0.0,
               end: Optional[float] = None, chunk_seconds: float = 10.0
               ) -> Optional[Iterator[np.ndarray]]:
  """Streams the first audio channel as float32 chunks on the video's time line.

  Sample ``i`` of the concatenated output is at ``start + i / sample_rate`` seconds after the
  first video frame; gaps before the audio starts are zeros. Returns None when the file has
  no audio stream (callers flag it; FakeOut then uses silence).

  Args:
    path: the video file.
    sample_rate: output rate (FakeOut: 44.1 kHz).
    start, end: the span wanted, in seconds on the video time line (end None: to the end).
    chunk_seconds: roughly how much audio each yielded chunk holds.
  """
  path = pathlib.Path(path)
  with _open(path) as container:
    if not container.streams.audio:
      return None
    video_start = probe(path).start_time if container.streams.video else 0.0
  return _audio_chunks(path, sample_rate, start, end, chunk_seconds, video_start)


def _audio_chunks(path, sample_rate, start, end, chunk_seconds, video_start):
  first_wanted = int(round(start * sample_rate))
  last_wanted = None if end is None else int(round(end * sample_rate))
  position = None       # sample index (on the video time line) of the next resampled sample
  pending, pending_size = [], 0
  chunk = max(1, int(chunk_seconds * sample_rate))

  def clip(samples, at):
    """The part of `samples` (starting at sample `at`) inside the wanted span."""
    lo = max(first_wanted - at, 0)
    hi = len(samples) if last_wanted is None else min(len(samples), last_wanted - at)
    return samples[lo:hi] if hi > lo else samples[:0]

  with _open(path) as container:
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="fltp", rate=sample_rate)
    errors = 0
    for packet in container.demux(stream):
      try:
        frames = packet.decode()
      except av.error.FFmpegError:
        errors += 1
        if errors > MAX_DECODE_ERRORS:
          raise CorruptVideoError(path, "the audio stream is corrupt") from None
        continue
      for frame in frames + ([] if packet.size else [None]):
        for out in resampler.resample(frame):
          samples = out.to_ndarray()[0].astype(np.float32, copy=False)
          if position is None:
            first_time = (float(out.time) if out.time is not None else video_start)
            position = int(round((first_time - video_start) * sample_rate))
            if position > first_wanted:   # audio starts after the video: pad with silence
              silence = np.zeros(position - first_wanted, np.float32)
              samples, position = np.concatenate([silence, samples]), first_wanted
          piece = clip(samples, position)
          position += len(samples)
          if piece.size:
            pending.append(piece)
            pending_size += piece.size
          if pending_size >= chunk:
            yield np.concatenate(pending)
            pending, pending_size = [], 0
          if last_wanted is not None and position >= last_wanted:
            break
      if last_wanted is not None and position is not None and position >= last_wanted:
        break
  if pending:
    yield np.concatenate(pending)


def audio_codec(path) -> tuple[str, int, int]:
  """(codec name, samples per codec frame, channels) of the first audio stream; ('', 0, 0)
  without audio.

  The frame size is the decoder's (AAC: 1024), 0 when the codec has no fixed frame size.
  Records keep them: the released FakeOut evaluation works on the ffmpeg wav of a track, which
  for AAC runs to the end of the last codec frame, and whose 16-bit grid depends on the channels.
  """
  with _open(path) as container:
    if not container.streams.audio:
      return "", 0, 0
    context = container.streams.audio[0].codec_context
    return context.name, int(context.frame_size or 0), int(context.channels or 0)


def read_audio(path, *, sample_rate: int = constants.SAMPLE_RATE, start: float = 0.0,
               end: Optional[float] = None) -> Optional[np.ndarray]:
  """The whole standardised audio span as mono float32 [n] (first channel), or None."""
  chunks = iter_audio(path, sample_rate=sample_rate, start=start, end=end)
  if chunks is None:
    return None
  chunks = list(chunks)
  return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
