"""One face track, as the face tracker hands it to the TFRecord writer and writes it to disk.

:class:`Track` is the in-memory form: every frame of one face, aligned, with its landmarks, the
transform that produced it, whether FaceMesh really saw the face, and the audio of its span.
A video of at most `constants.MAX_SECONDS` fits comfortably (59 s at 29 fps: about 260 MB of
224x224 frames per track); longer inputs go through the streaming command line path, which
writes the same content to disk frame by frame (an mp4 and this module's sidecar).

Sidecar on disk (``name.npz`` beside ``name.mp4``): the arrays of :data:`SIDECAR_ARRAYS`
(everything but the pixels and the audio) plus ``meta_json``, the scalar fields as JSON.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Optional

import numpy as np

from data import constants

SIDECAR_ARRAYS = ("timestamps", "landmarks_224", "transforms_224", "transforms_112", "detected")


@dataclasses.dataclass
class Track:
  """One face track of one video. T = number of frames (at `fps`), N = 478 FaceMesh points.

  Attributes:
    video_id: the input's id (its path relative to the input root, without suffix).
    video_path: the input file.
    track_index: 0 for a single-face video; 0, 1, ... for name@part1, name@part2, ...
    name: output name: the video id, or "<id>@part<k>" in multi-face mode (the authors' naming).
    fps: frame rate of every array below (constants.FPS).
    timestamps: float64 [T], seconds since the first frame of the video (= frame index / fps).
    frames_224: uint8 [T, 224, 224, 3] RGB aligned faces (FakeOut input).
    frames_112: uint8 [T, 112, 112, 3] RGB faces on the ArcFace template (AdaFace input).
    landmarks_224: float32 [T, 478, 3] FaceMesh landmarks in aligned 224 pixel coordinates
      (z in the same pixel scale); interpolated where `detected` is False.
    transforms_224: float32 [T, 2, 3] source frame pixels -> aligned 224 pixels (smoothed).
    transforms_112: float32 [T, 2, 3] source frame pixels -> 112 ArcFace pixels (smoothed).
    detected: bool [T], True where FaceMesh saw the face, False where interpolated.
    audio: float32 [round(T / fps * sample_rate)] first audio channel over the track's span,
      or None when the video has no audio (`has_audio` False).
    sample_rate: audio rate (constants.SAMPLE_RATE).
    source_size: (width, height) of the source frames as displayed.
    source_fps: the source's own frame rate before standardisation.
  """
  video_id: str
  video_path: str
  track_index: int
  name: str
  fps: float
  timestamps: np.ndarray
  frames_224: Optional[np.ndarray]
  frames_112: Optional[np.ndarray]
  landmarks_224: np.ndarray
  transforms_224: np.ndarray
  transforms_112: np.ndarray
  detected: np.ndarray
  audio: Optional[np.ndarray]
  has_audio: bool
  source_size: tuple
  source_fps: float = 0.0
  sample_rate: int = constants.SAMPLE_RATE

  def __post_init__(self):
    count = len(self.timestamps)
    for field in SIDECAR_ARRAYS + ("frames_224", "frames_112"):
      value = getattr(self, field)
      if value is not None and len(value) != count:
        raise ValueError(f"track {self.name}: {field} has {len(value)} frames, timestamps have"
                         f" {count}")

  @property
  def num_frames(self) -> int:
    return len(self.timestamps)

  @property
  def detected_fraction(self) -> float:
    return float(np.mean(self.detected)) if self.num_frames else 0.0

  def meta(self) -> dict:
    """The scalar fields, JSON-ready (what the sidecar's meta_json holds)."""
    return {"video_id": self.video_id, "video_path": self.video_path,
            "track_index": self.track_index, "name": self.name, "fps": self.fps,
            "num_frames": self.num_frames, "has_audio": self.has_audio,
            "sample_rate": self.sample_rate, "source_size": list(self.source_size),
            "source_fps": self.source_fps, "detected_fraction": self.detected_fraction}

  def save_sidecar(self, path) -> pathlib.Path:
    path = pathlib.Path(path)
    np.savez(path, meta_json=np.array(json.dumps(self.meta())),
             **{name: getattr(self, name) for name in SIDECAR_ARRAYS})
    return path


def load_sidecar(path) -> Track:
  """Reads a sidecar back as a Track without pixels or audio (frames_* and audio are None)."""
  with np.load(pathlib.Path(path), allow_pickle=False) as data:
    meta = json.loads(str(data["meta_json"]))
    arrays = {name: data[name] for name in SIDECAR_ARRAYS}
  return Track(video_id=meta["video_id"], video_path=meta["video_path"],
               track_index=meta["track_index"], name=meta["name"], fps=meta["fps"],
               frames_224=None, frames_112=None, audio=None, has_audio=meta["has_audio"],
               source_size=tuple(meta["source_size"]), source_fps=meta["source_fps"],
               sample_rate=meta["sample_rate"], **arrays)
