"""Pass 2 of the tracker: MediaPipe FaceMesh (478 points) on each crop, tracks by IoU.

As the authors (FacePipe): the legacy FaceMesh solution in video mode (max_num_faces=2,
refine_landmarks=True, min_detection_confidence=0.3, min_tracking_confidence=0.8) runs on
every frame of a crop; each face found is given to the candidate track whose last landmark
box overlaps it most (IoU > 0.2; one face per candidate and frame), otherwise it starts a new
candidate (at most 2). The candidate seen in the most frames is the crop's track; it is dropped
when seen in fewer than 20% of the frames. Missing frames are interpolated linearly between
detected ones; leading and trailing gaps copy the nearest detection.

Unlike the authors (one FaceMesh object shared by every crop and video, so tracking state
leaked between them) each crop gets its own FaceMesh. Association boxes are measured in the
crop's own coordinates scaled to [0, 1], which for the authors' static crop gives exactly
their IoU, and for a crop that follows the face ("follow" mode) keeps a face that left and came
back elsewhere in the same track. Landmarks are kept in source-frame pixels. The full landmark
sets go to a temporary file (:class:`LandmarkStore`); only the few points alignment needs stay
in memory, so memory does not grow with video length.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Optional

import numpy as np

from data import align

NUM_LANDMARKS = 478
# The points alignment needs (224 and 112 templates), kept in memory for every frame.
KEY_INDICES = tuple(sorted(set(align.FACEMESH_ALIGN_INDICES) |
                           {i for group in align.FACEMESH_ARCFACE_GROUPS for i in group}))


@dataclasses.dataclass(frozen=True)
class FaceMeshSettings:
  max_num_faces: int = 2
  refine_landmarks: bool = True
  min_detection_confidence: float = 0.3
  min_tracking_confidence: float = 0.8
  iou_threshold: float = 0.2
  max_candidates: int = 2


class LandmarkStore:
  """Append-only float32 [478, 3] records in an anonymous temporary file."""

  _RECORD = NUM_LANDMARKS * 3 * 4

  def __init__(self, directory: Optional[str] = None):
    self._file = tempfile.TemporaryFile(dir=directory)
    self._count = 0

  def append(self, landmarks: np.ndarray) -> int:
    self._file.seek(0, os.SEEK_END)
    self._file.write(np.ascontiguousarray(landmarks, np.float32).tobytes())
    self._count += 1
    return self._count - 1

  def read(self, record: int) -> np.ndarray:
    self._file.seek(record * self._RECORD)
    data = self._file.read(self._RECORD)
    return np.frombuffer(data, np.float32).reshape(NUM_LANDMARKS, 3)

  def close(self) -> None:
    self._file.close()


def box_of(landmarks: np.ndarray) -> np.ndarray:
  """Integer (x1, y1, x2, y2) bounding box of a landmark set, as the authors compute it."""
  return np.array([int(landmarks[:, 0].min()), int(landmarks[:, 1].min()),
                   int(landmarks[:, 0].max()), int(landmarks[:, 1].max())], np.float64)


def iou(a: np.ndarray, b: np.ndarray) -> float:
  width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
  height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
  inter = width * height
  union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
  return inter / union if union > 0 else 0.0


@dataclasses.dataclass
class LandmarkTrack:
  """FaceMesh results of one face over a video, interpolated to every frame.

  key_points: float64 [T, len(KEY_INDICES), 3] source-pixel points, interpolated.
  detected: bool [T]; records: int [T] store record of each detected frame (-1 elsewhere).
  """
  part: int
  multi: bool
  key_points: np.ndarray
  detected: np.ndarray
  records: np.ndarray
  store: LandmarkStore

  def __post_init__(self):
    frames = np.flatnonzero(self.detected)
    everywhere = np.arange(len(self.detected))
    # For each frame, the detected frames before and after it (equal when detected; the
    # nearest one at both ends, which makes the interpolation copy it).
    self._previous = frames[np.clip(np.searchsorted(frames, everywhere, "right") - 1, 0,
                                    len(frames) - 1)]
    self._next = frames[np.clip(np.searchsorted(frames, everywhere, "left"), 0,
                                len(frames) - 1)]

  @property
  def num_frames(self) -> int:
    return len(self.detected)

  def points(self, indices) -> np.ndarray:
    """[T, len(indices), 2] interpolated source-pixel positions of FaceMesh points."""
    columns = [KEY_INDICES.index(i) for i in indices]
    return self.key_points[:, columns, :2]

  def landmarks(self, frame: int) -> np.ndarray:
    """[478, 3] source-pixel landmarks of one frame, interpolated when not detected."""
    before, after = self._previous[frame], self._next[frame]
    first = self.store.read(self.records[before]).astype(np.float64)
    if after == before:
      return first
    weight = (frame - before) / (after - before)
    return first + weight * (self.store.read(self.records[after]) - first)


def interpolate(frames: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
  """Linear interpolation of per-frame values [D, ...] known at `frames` to all `count`."""
  flat = values.reshape(len(values), -1)
  everywhere = np.arange(count)
  out = np.stack([np.interp(everywhere, frames, column) for column in flat.T], axis=1)
  return out.reshape((count,) + values.shape[1:])


class CropTracker:
  """FaceMesh over the crops of one face, with the authors' IoU association."""

  def __init__(self, part: int, multi: bool, store: LandmarkStore,
               settings: FaceMeshSettings = FaceMeshSettings()):
    import mediapipe as mp  # heavy; only when tracking
    self.part, self.multi, self.settings = part, multi, settings
    self._mesh = mp.solutions.face_mesh.FaceMesh(
        static_image_mode=False, max_num_faces=settings.max_num_faces,
        refine_landmarks=settings.refine_landmarks,
        min_detection_confidence=settings.min_detection_confidence,
        min_tracking_confidence=settings.min_tracking_confidence)
    self._store = store
    self._last_box = []        # per candidate
    self._frames = []          # per candidate: detected frame indices
    self._records = []         # per candidate: store records
    self._keys = []            # per candidate: key points per detected frame

  def process(self, frame_index: int, crop: np.ndarray, origin: tuple) -> list:
    """Runs FaceMesh on an RGB crop whose top-left corner is `origin` in the source frame.

    Returns the boxes (x1, y1, x2, y2) of the faces found, as fractions of the crop.
    """
    found = []
    if crop.size == 0:
      return found
    height, width = crop.shape[:2]
    result = self._mesh.process(np.ascontiguousarray(crop))
    for face in result.multi_face_landmarks or ():
      points = np.array([(p.x, p.y, p.z) for p in face.landmark], np.float64)
      points *= (width, height, width)
      # Association works in crop coordinates (the authors' static crop: their pixel boxes;
      # a moving crop: the face stays where it was relative to the crop), scaled to [0, 1].
      box = box_of(points) / (width, height, width, height)
      points[:, 0] += origin[0]
      points[:, 1] += origin[1]
      self._assign(frame_index, points, box)
      found.append(box)
    return found

  def _assign(self, frame_index: int, points: np.ndarray, box: np.ndarray) -> None:
    best, best_iou = None, 0.0
    for candidate, last in enumerate(self._last_box):
      overlap = iou(box, last)
      if overlap > best_iou:
        best, best_iou = candidate, overlap
    if best is not None and best_iou > self.settings.iou_threshold:
      if self._frames[best] and self._frames[best][-1] == frame_index:
        return                 # this candidate already has a face in this frame
      candidate = best
    elif len(self._last_box) < self.settings.max_candidates:
      candidate = len(self._last_box)
      self._last_box.append(box)
      self._frames.append([])
      self._records.append([])
      self._keys.append([])
    else:
      return
    self._last_box[candidate] = box
    self._frames[candidate].append(frame_index)
    self._records[candidate].append(self._store.append(points))
    self._keys[candidate].append(points[list(KEY_INDICES)].astype(np.float32))

  def close(self) -> None:
    if self._mesh is not None:
      self._mesh.close()
      self._mesh = None

  def finish(self, num_frames: int, min_fraction: float = 0.2) -> Optional[LandmarkTrack]:
    """The candidate seen most often, or None if none was seen in >= min_fraction of frames."""
    self.close()
    if not self._frames:
      return None
    best = max(range(len(self._frames)), key=lambda c: len(self._frames[c]))
    frames = np.asarray(self._frames[best], np.int64)
    if len(frames) < min_fraction * num_frames:
      return None
    detected = np.zeros(num_frames, bool)
    detected[frames] = True
    records = np.full(num_frames, -1, np.int64)
    records[frames] = self._records[best]
    key_points = interpolate(frames, np.stack(self._keys[best]).astype(np.float64), num_frames)
    return LandmarkTrack(part=self.part, multi=self.multi, key_points=key_points,
                         detected=detected, records=records, store=self._store)

  @property
  def seen_counts(self) -> list:
    return [len(frames) for frames in self._frames]
