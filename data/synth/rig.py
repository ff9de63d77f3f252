"""A face rig on a portrait: FaceMesh landmarks that open the jaw and close the eyelids.

Speech and blinks are rendered by moving landmarks and warping the portrait piecewise-affinely
(`warp.py`) over one fixed triangulation of the 468 mesh points plus fixed anchors (a ring
around the head and the image border, so nothing outside the ring ever moves):

* jaw: lower lip, chin and lower cheeks move down along the face's vertical axis by
  ``opening * JAW_DROP * face_height``, weighted by a horizontal profile centred on the mouth
  (the chin moves fully, the jaw angle hardly); the upper lip rises slightly; mouth corners
  follow a little. The gap that opens between the inner lip contours is painted as the mouth
  cavity with the upper teeth showing.
* lids: each upper-lid point travels towards its partner on the lower lid, the crease above
  follows half-way, so a blink stretches the real eyelid skin over the eye.
"""
from __future__ import annotations

import cv2
import numpy as np

from data.synth import photos
from data.synth import warp

JAW_DROP = 0.10  # lower-lip travel at full opening, as a fraction of the face height
UPPER_LIP_RISE = 0.12  # the upper lip rises by this fraction of the jaw travel
CORNER_FOLLOW = 0.3
ANCHOR_RING_RADIUS = 0.8  # in face heights from the face centre
ANCHOR_RING_POINTS = 28
LID_TRAVEL = 0.97  # fraction of the way to the lower lid at a full blink (avoids zero areas)
CREASE_FOLLOW = 0.45
TEETH_HEIGHT = 0.035  # visible upper-teeth band, fraction of the face height
CAVITY_RGB = np.array([48, 16, 20], np.float32)
TEETH_RGB = np.array([212, 204, 188], np.float32)
_AA_SHIFT = 4


def face_axes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Unit vectors (u along the eye line towards the subject's left, v down the face)."""
  right_eye = landmarks[list(photos.RIGHT_EYE_CORNERS)].mean(axis=0)
  left_eye = landmarks[list(photos.LEFT_EYE_CORNERS)].mean(axis=0)
  u = left_eye - right_eye
  u = u / np.linalg.norm(u)
  return u.astype(np.float32), np.array([-u[1], u[0]], np.float32)


def close_mouth(landmarks: np.ndarray) -> np.ndarray:
  """Landmarks with the lips together: the lower lip group moves up onto the upper lip."""
  points = np.array(landmarks[:photos.NUM_MESH_POINTS], np.float32)
  rig_weights = _jaw_weights(points)
  _, v = face_axes(points)
  gap = float((points[photos.LOWER_INNER_LIP[5]] - points[photos.UPPER_INNER_LIP[5]]) @ v)
  if gap > 0:
    points -= gap * rig_weights[:, None] * v[None]
  # Inner lower lip exactly on the inner upper lip (plus a hair, to keep triangles non-flat).
  for upper, lower in zip(photos.UPPER_INNER_LIP[1:-1], photos.LOWER_INNER_LIP[1:-1]):
    points[lower] = points[upper] + 0.3 * v
  return points


def _jaw_weights(points: np.ndarray) -> np.ndarray:
  """Per-landmark share of the jaw travel (1 = moves fully down, negative = moves up)."""
  u_axis, v_axis = face_axes(points)
  mouth = (points[13] + points[14]) / 2
  rel = points - mouth
  u, v = rel @ u_axis, rel @ v_axis
  half_width = max(abs(float(u[61] - u[291])) / 2, 1.0)
  profile = np.exp(-(np.abs(u) / (1.3 * half_width)) ** 3)
  upper_inner = np.array(photos.UPPER_INNER_LIP)
  lower_inner = np.array(photos.LOWER_INNER_LIP)
  seam_u = u[upper_inner]
  seam_v = (v[upper_inner] + v[lower_inner]) / 2
  order = np.argsort(seam_u)
  seam = np.interp(u, seam_u[order], seam_v[order])
  weights = np.where(v > seam + 0.5, profile, 0.0)
  for index in photos.LOWER_INNER_LIP + photos.LOWER_OUTER_LIP:
    weights[index] = profile[index]
  for index in photos.UPPER_INNER_LIP + photos.UPPER_OUTER_LIP:
    weights[index] = -UPPER_LIP_RISE * profile[index]
  for index in photos.MOUTH_CORNERS:
    weights[index] = CORNER_FOLLOW
  return weights.astype(np.float32)


def _lid_vectors(points: np.ndarray) -> np.ndarray:
  vectors = np.zeros_like(points)
  for upper, lower, crease in ((photos.RIGHT_UPPER_LID, photos.RIGHT_LOWER_LID,
                                photos.RIGHT_CREASE),
                               (photos.LEFT_UPPER_LID, photos.LEFT_LOWER_LID,
                                photos.LEFT_CREASE)):
    travel = points[list(lower)] - points[list(upper)]
    vectors[list(upper)] = LID_TRAVEL * travel
    vectors[list(crease)] = CREASE_FOLLOW * travel
  return vectors


class FaceRig:
  """The movable landmark mesh of one portrait image of shape `shape` (height, width)."""

  def __init__(self, landmarks: np.ndarray, shape: tuple[int, int]):
    mesh = np.asarray(landmarks[:photos.NUM_MESH_POINTS], np.float32)
    self.shape = shape
    self.landmarks = mesh
    self.face_height = float(np.linalg.norm(mesh[photos.CHIN] - mesh[photos.FOREHEAD]))
    self.u_axis, self.v_axis = face_axes(mesh)
    center = (mesh[photos.CHIN] + mesh[photos.FOREHEAD]) / 2
    anchors = np.concatenate([
        warp.ring_anchors(center, ANCHOR_RING_RADIUS * self.face_height, ANCHOR_RING_POINTS),
        warp.border_anchors(shape[1], shape[0])])
    self.points = np.concatenate([mesh, anchors]).astype(np.float32)
    self.triangles = warp.triangulate(self.points)
    jaw = np.zeros_like(self.points)
    jaw[:len(mesh)] = (_jaw_weights(mesh)[:, None] * self.v_axis[None]
                       * JAW_DROP * self.face_height)
    self.jaw = jaw
    lids = np.zeros_like(self.points)
    lids[:len(mesh)] = _lid_vectors(mesh)
    self.lids = lids

  def pose(self, opening: float, closure: float) -> np.ndarray:
    """Landmarks (with anchors) for a mouth `opening` and eyelid `closure`, both in [0, 1]."""
    return self.points + float(opening) * self.jaw + float(closure) * self.lids

  def render(self, image: np.ndarray, opening: float, closure: float) -> np.ndarray:
    """The portrait with the jaw opened and the lids closed; `image` is left untouched."""
    target = self.pose(opening, closure)
    roi = warp.moving_roi(self.points, target, self.triangles, self.shape)
    out = warp.warp_region(image, self.points, target, self.triangles, roi)
    if opening > 0.02:
      self._paint_cavity(out, target, opening)
    return out

  def _paint_cavity(self, image: np.ndarray, target: np.ndarray, opening: float) -> None:
    upper = target[list(photos.UPPER_INNER_LIP)]
    lower = target[list(photos.LOWER_INNER_LIP)]
    polygon = np.concatenate([upper, lower[::-1]])
    teeth_depth = min(TEETH_HEIGHT * self.face_height, 0.45 * opening * JAW_DROP
                      * self.face_height)
    teeth = np.concatenate([upper[2:-2], upper[2:-2][::-1] + teeth_depth * self.v_axis])
    x0, y0 = np.floor(polygon.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + 3
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, image.shape[1]), min(y1, image.shape[0])
    if x1 <= x0 or y1 <= y0:
      return
    size = (y1 - y0, x1 - x0)
    cavity = _polygon_alpha(polygon - [x0, y0], size)
    teeth_alpha = _polygon_alpha(teeth - [x0, y0], size) * cavity
    # Darker towards the middle of the opening: depth cue that also survives compression.
    depth = cv2.GaussianBlur(cavity, (0, 0), max(1.0, 0.004 * self.face_height))
    colour = (CAVITY_RGB[None, None] * (1.15 - 0.4 * depth[..., None]))
    colour = colour * (1 - teeth_alpha[..., None]) + TEETH_RGB * teeth_alpha[..., None]
    patch = image[y0:y1, x0:x1].astype(np.float32)
    alpha = cavity[..., None]
    image[y0:y1, x0:x1] = np.clip(patch * (1 - alpha) + colour * alpha, 0, 255).astype(np.uint8)


def _polygon_alpha(polygon: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Anti-aliased coverage in [0, 1] of a polygon over an image of `size` (height, width)."""
  mask = np.zeros(size, np.uint8)
  points = np.round(polygon * (1 << _AA_SHIFT)).astype(np.int32)
  cv2.fillPoly(mask, [points], 255, lineType=cv2.LINE_AA, shift=_AA_SHIFT)
  return mask.astype(np.float32) / 255.0
