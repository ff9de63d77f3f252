"""Real video files with KNOWN face motion, made from real face photos that installed packages
ship (scikit-image's astronaut, Eileen Collins; matplotlib's Grace Hopper).

Each face is cut out of its photo with a soft elliptical mask and composited onto a plain
background through a similarity transform (centre, scale, in-plane angle) that changes
linearly over time. Because the motion is known, so is where every landmark of the photo lands
in every frame: tests compare the tracker's output with that, independently of the tracker.

The photo landmarks are annotated once on the full-resolution still photos (MediaPipe FaceMesh
in static-image mode, checked by eye) and frozen here as constants: `FacePhoto.points` are the
FaceMesh points [2, 130, 243, 463, 359] the 224 alignment uses, `FacePhoto.points_112` the five
ArcFace points data.align derives (eye centres, nose tip, mouth corners).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
from fractions import Fraction
from typing import Optional, Sequence

import av
import cv2
import numpy as np

from data import video_writer


@dataclasses.dataclass(frozen=True)
class FacePhoto:
  name: str
  image: np.ndarray            # RGB uint8
  points: np.ndarray           # [5, 2] photo coordinates of FaceMesh [2, 130, 243, 463, 359]
  points_112: np.ndarray       # [5, 2] photo coordinates of the ArcFace five points
  centre: tuple                # face centre in the photo (the motion's pivot)
  radii: tuple                 # half-axes of the elliptical cut-out


@functools.lru_cache(maxsize=None)
def photos() -> dict:
  from matplotlib import cbook
  from skimage import data
  import imageio.v3 as iio
  astronaut = data.astronaut()
  hopper = iio.imread(cbook.get_sample_data("grace_hopper.jpg"))[..., :3]
  return {
      "astronaut": FacePhoto(
          "astronaut", astronaut,
          np.array([[223.4, 132.4], [193.5, 100.9], [214.6, 103.9], [235.7, 105.0],
                    [257.2, 104.5]]),
          np.array([[204.3, 102.3], [246.4, 104.6], [223.6, 125.8], [201.8, 139.2],
                    [245.0, 141.0]]), centre=(225.0, 115.0), radii=(78.0, 100.0)),
      # Scaled by 1/2 so that both faces have about the same size at the same motion scale.
      "hopper": FacePhoto(
          "hopper", cv2.resize(hopper, (256, 300), interpolation=cv2.INTER_AREA),
          np.array([[267.8, 252.1], [202.0, 193.9], [246.7, 193.3], [285.7, 193.0],
                    [327.0, 189.0]]) / 2,
          np.array([[224.5, 192.9], [305.9, 190.5], [267.5, 237.3], [232.4, 280.6],
                    [302.4, 276.9]]) / 2, centre=(133.0, 118.0), radii=(62.0, 82.0)),
  }


@dataclasses.dataclass(frozen=True)
class FaceMotion:
  """A face moving linearly from `start` to `end` = (centre x, centre y, scale, angle degrees).

  The angle is counter-clockwise as seen on screen. `visible` lists the time spans (seconds)
  during which the face is in the picture (None: always).
  """
  photo: str
  start: tuple
  end: tuple
  visible: Optional[tuple] = None

  def params(self, t: float, duration: float) -> np.ndarray:
    a = 0.0 if duration <= 0 else min(max(t / duration, 0.0), 1.0)
    return (1 - a) * np.asarray(self.start, float) + a * np.asarray(self.end, float)

  def matrix(self, t: float, duration: float) -> np.ndarray:
    """[2, 3] affine map from photo pixels to frame pixels at time t."""
    cx, cy, scale, angle = self.params(t, duration)
    photo = photos()[self.photo]
    theta = math.radians(angle)
    # y points down on screen, so a counter-clockwise turn is [[c, s], [-s, c]].
    linear = scale * np.array([[math.cos(theta), math.sin(theta)],
                               [-math.sin(theta), math.cos(theta)]])
    offset = np.array([cx, cy]) - linear @ np.asarray(photo.centre)
    return np.concatenate([linear, offset[:, None]], axis=1)

  def is_visible(self, t: float) -> bool:
    return self.visible is None or any(t0 <= t < t1 for t0, t1 in self.visible)


@dataclasses.dataclass(frozen=True)
class Scene:
  """What a fixture video shows: its size, length and the faces' motion."""
  size: tuple                  # (width, height)
  duration: float              # seconds
  faces: tuple = ()

  def frame(self, t: float) -> np.ndarray:
    width, height = self.size
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    canvas = (np.array([70, 90, 110], np.float32) * (1 - ramp) +
              np.array([150, 140, 120], np.float32) * ramp) * np.ones((1, width, 1), np.float32)
    for face in self.faces:
      if not face.is_visible(t):
        continue
      photo = photos()[face.photo]
      matrix = face.matrix(t, self.duration)
      warped = cv2.warpAffine(photo.image, matrix, (width, height), flags=cv2.INTER_LINEAR)
      alpha = cv2.warpAffine(_mask(photo.name), matrix, (width, height),
                             flags=cv2.INTER_LINEAR)[..., None]
      canvas = alpha * warped.astype(np.float32) + (1 - alpha) * canvas
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)

  def points(self, t: float, kind: str = "224") -> list:
    """Per face, the [5, 2] frame positions of the alignment landmarks (None if not visible).

    kind "224": FaceMesh [2, 130, 243, 463, 359]; "112": the ArcFace five points.
    """
    out = []
    for face in self.faces:
      if not face.is_visible(t):
        out.append(None)
        continue
      matrix = face.matrix(t, self.duration)
      photo = photos()[face.photo]
      pts = photo.points if kind == "224" else photo.points_112
      out.append(pts @ matrix[:, :2].T + matrix[:, 2])
    return out


@functools.lru_cache(maxsize=None)
def _mask(name: str) -> np.ndarray:
  photo = photos()[name]
  height, width = photo.image.shape[:2]
  mask = np.zeros((height, width), np.float32)
  cv2.ellipse(mask, (int(photo.centre[0]), int(photo.centre[1])),
              (int(photo.radii[0]), int(photo.radii[1])), 0, 0, 360, 1.0, -1)
  return cv2.GaussianBlur(mask, (0, 0), 6)


def tone(duration: float, sample_rate: int = 48_000, channels: int = 2,
         frequency: float = 440.0, burst_at: Optional[float] = None) -> np.ndarray:
  """A sine (first channel) and a quieter octave (second), with an optional loud 50 ms burst."""
  t = np.arange(int(round(duration * sample_rate))) / sample_rate
  first = 0.3 * np.sin(2 * np.pi * frequency * t)
  if burst_at is not None:
    burst = (t >= burst_at) & (t < burst_at + 0.05)
    first = np.where(burst, 0.9 * np.sign(np.sin(2 * np.pi * 1000 * t)), 0.05 * first)
  second = 0.1 * np.sin(2 * np.pi * 2 * frequency * t)
  out = np.stack([first, second], axis=1) if channels == 2 else first[:, None]
  return out.astype(np.float32)


def write_scene(path, scene: Scene, *, fps: float = 30, audio: Optional[np.ndarray] = None,
                sample_rate: int = 48_000, video_codec: str = "libx264",
                audio_codec: str = "aac") -> pathlib.Path:
  """Encodes `scene` at a constant `fps` (frame n shows time n / fps)."""
  count = max(1, int(round(scene.duration * fps)))
  frames = (scene.frame(n / fps) for n in range(count))
  return video_writer.write_video(path, frames, fps=fps, audio=audio, sample_rate=sample_rate,
                                  video_codec=video_codec, audio_codec=audio_codec)


def write_frames(path, frames: Sequence[np.ndarray], times: Sequence[float], *,
                 rotation: int = 0, audio: Optional[np.ndarray] = None,
                 sample_rate: int = 48_000) -> pathlib.Path:
  """Writes frames at arbitrary times (variable frame rate) with an optional display rotation.

  `frames` are as they should be DISPLAYED; they are stored turned back by `rotation` degrees
  (counter-clockwise) and the container's display matrix says to turn them on playback.
  """
  path = pathlib.Path(path)
  k = (rotation // 90) % 4
  stored = [np.ascontiguousarray(np.rot90(f, -k)) for f in frames]
  height, width = stored[0].shape[:2]
  with av.open(str(path), "w") as container:
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.time_base = Fraction(1, 1000)
    stream.codec_context.time_base = Fraction(1, 1000)
    if rotation:
      stream.set_display_rotation(rotation)
    audio_stream = None
    if audio is not None:
      audio_stream = container.add_stream("aac", rate=sample_rate)
      audio_stream.layout = "stereo" if audio.shape[1] == 2 else "mono"
    for image, t in zip(stored, times):
      frame = av.VideoFrame.from_ndarray(image, format="rgb24")
      frame.pts = int(round(t * 1000))
      frame.time_base = Fraction(1, 1000)
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
    if audio_stream is not None:
      audio_frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio.T), format="fltp",
                                               layout=audio_stream.layout.name)
      audio_frame.sample_rate, audio_frame.pts = sample_rate, 0
      for packet in audio_stream.encode(audio_frame):
        container.mux(packet)
      for packet in audio_stream.encode():
        container.mux(packet)
  return path


def garbage_video(path, frames: int = 10) -> pathlib.Path:
  """An mp4 whose container is intact but whose every video packet is random bytes."""
  path = pathlib.Path(path)
  video_writer.write_video(path, [numbered_frame(n) for n in range(frames)], fps=29)
  data = bytearray(path.read_bytes())
  start = data.find(b"mdat") + 4
  size = int.from_bytes(data[start - 8:start - 4], "big") - 8
  data[start:start + size] = np.random.default_rng(0).integers(0, 256, size, np.uint8).tobytes()
  path.write_bytes(bytes(data))
  return path


def audio_only(path, seconds: float = 0.5) -> pathlib.Path:
  """A file with an audio stream and no video stream."""
  path = pathlib.Path(path)
  with av.open(str(path), "w") as container:
    stream = container.add_stream("aac", rate=44_100)
    frame = av.AudioFrame.from_ndarray(tone(seconds, 44_100, channels=1).T.copy(),
                                       format="fltp", layout="mono")
    frame.sample_rate, frame.pts = 44_100, 0
    for packet in list(stream.encode(frame)) + list(stream.encode()):
      container.mux(packet)
  return path


def numbered_frame(n: int, size=(96, 64)) -> np.ndarray:
  """A frame showing the number n as 8 black/white blocks that survive compression."""
  width, height = size
  frame = np.zeros((height, width, 3), np.uint8)
  block = width // 8
  for bit in range(8):
    if (n >> bit) & 1:
      frame[:, bit * block:(bit + 1) * block] = 255
  return frame


def read_number(image: np.ndarray) -> int:
  block = image.shape[1] // 8
  bits = [image[:, b * block + block // 4:(b + 1) * block - block // 4].mean() > 127
          for b in range(8)]
  return sum(1 << b for b, on in enumerate(bits) if on)


# Scenes the tests share. Sizes and lengths are small: MTCNN is slow on CPU.
ONE_FACE = Scene((320, 240), 2.0, (
    FaceMotion("astronaut", (140, 120, 0.85, -12), (185, 110, 1.05, 12)),))
TWO_FACES = Scene((480, 240), 2.0, (
    FaceMotion("astronaut", (120, 120, 0.9, -5), (140, 115, 0.95, 5)),
    FaceMotion("hopper", (355, 118, 0.95, 6), (335, 122, 0.9, -6))))
NO_FACE = Scene((320, 240), 1.0, ())
LEAVE_AND_RETURN = Scene((320, 240), 2.4, (
    FaceMotion("astronaut", (150, 120, 0.95, 0), (170, 120, 0.95, 0),
               visible=((0.0, 0.8), (1.4, 2.4))),))
WITH_DISTRACTOR = Scene((400, 240), 2.0, (
    FaceMotion("hopper", (150, 120, 1.0, -4), (170, 118, 1.0, 4)),
    FaceMotion("astronaut", (345, 55, 0.32, 0), (345, 55, 0.32, 0))))
# A face crossing most of a wide picture: one static union crop is then mostly background.
CROSSING = Scene((640, 240), 2.0, (
    FaceMotion("astronaut", (90, 125, 0.75, -8), (550, 110, 0.8, 8)),))


def shown_time(index: int, source_fps: float, fps: float = 29) -> float:
  """Scene time of the source frame a standardised frame shows (sample and hold)."""
  return math.floor(index * source_fps / fps + 1e-6) / source_fps
