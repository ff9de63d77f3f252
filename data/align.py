"""Similarity alignment of FaceMesh landmarks: 224x224 faces (FakeOut) and 112x112 (AdaFace).

224x224 (FakeOut Appendix D, the authors' FacePipe): the FaceMesh points
[2, 130, 243, 463, 359] (below the nose tip; outer and inner corner of the image-left eye;
inner and outer corner of the image-right eye) are mapped by a least-squares similarity
(rotation, uniform scale, translation; Umeyama, as scikit-image's 'similarity' estimate) onto
five points of the lip-reading mean face (`data/resources/alignment_reference_224.json`).

112x112 (identity encoder of the inconsistency detector): the ArcFace five-point template
(`data/resources/arcface_reference_112.json`) from the same FaceMesh landmarks:
  image-left eye centre  = mean of FaceMesh 33 and 133 (its outer and inner corner)
  image-right eye centre = mean of FaceMesh 362 and 263
  nose tip               = FaceMesh 4
  mouth corners          = FaceMesh 61 (image left) and 291 (image right)
Eye centres come from the eye corners rather than the iris points (468, 473) so that gaze does
not move the crop; FaceMesh 4 sits where 2-D annotators put the nose tip (FaceMesh 1 lies a few
pixels lower). On the two test photos this choice fits the template with the smallest residual.

Temporal smoothing (window 5, as the authors): the transform of frame i is estimated from the
mean of the landmarks of frames i .. i+4; the last frames reuse the last full window's transform.
"""
from __future__ import annotations

import functools
import importlib.resources
import json
from typing import Sequence

import cv2
import numpy as np
from skimage import transform as sktransform

from data import constants

FACEMESH_ALIGN_INDICES = (2, 130, 243, 463, 359)
# Groups of FaceMesh points whose mean gives each ArcFace template point, in template order.
FACEMESH_ARCFACE_GROUPS = ((33, 133), (362, 263), (4,), (61,), (291,))
SMOOTHING_WINDOW = 5


def _resource(name: str) -> dict:
  return json.loads(importlib.resources.files("data.resources").joinpath(name).read_text())


@functools.lru_cache(maxsize=None)
def reference_points_224() -> np.ndarray:
  """[5, 2] target positions of FACEMESH_ALIGN_INDICES in the 224x224 output."""
  data = _resource("alignment_reference_224.json")
  if tuple(data["mediapipe_facemesh_indices"]) != FACEMESH_ALIGN_INDICES:
    raise ValueError("alignment_reference_224.json lists FaceMesh points "
                     f"{data['mediapipe_facemesh_indices']}, expected {FACEMESH_ALIGN_INDICES}")
  points = np.asarray(data["reference_points_xy"], np.float64)
  points.setflags(write=False)
  return points


@functools.lru_cache(maxsize=None)
def reference_points_112() -> np.ndarray:
  """[5, 2] ArcFace template: image-left eye, image-right eye, nose tip, mouth corners."""
  points = np.asarray(_resource("arcface_reference_112.json")["points_112x112"], np.float64)
  points.setflags(write=False)
  return points


def align_points_224(landmarks: np.ndarray) -> np.ndarray:
  """[..., 478, >=2] FaceMesh landmarks -> [..., 5, 2] points matched to the 224 reference."""
  return np.asarray(landmarks)[..., FACEMESH_ALIGN_INDICES, :2]


def align_points_112(landmarks: np.ndarray) -> np.ndarray:
  """[..., 478, >=2] FaceMesh landmarks -> [..., 5, 2] points matched to the ArcFace template."""
  landmarks = np.asarray(landmarks)
  return np.stack([landmarks[..., list(group), :2].mean(axis=-2)
                   for group in FACEMESH_ARCFACE_GROUPS], axis=-2)


def similarity_matrix(source: np.ndarray, target: np.ndarray) -> np.ndarray:
  """[2, 3] least-squares similarity mapping `source` [N, 2] points onto `target` [N, 2]."""
  source = np.asarray(source, np.float64)
  target = np.asarray(target, np.float64)
  if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 2:
    raise ValueError(f"need two [N, 2] point sets, got {source.shape} and {target.shape}")
  if not np.all(np.isfinite(source)):
    raise ValueError("source points must be finite")
  tform = sktransform.SimilarityTransform.from_estimate(source, target)
  if not tform:
    raise ValueError(f"no similarity transform fits these points ({tform})")
  return np.asarray(tform.params[:2], np.float64)


def smoothed_points(points: np.ndarray, window: int = SMOOTHING_WINDOW,
                    centred: bool = False) -> np.ndarray:
  """Mean over `window` frames: [T, ...] -> [T, ...].

  Forward (the authors): frame i gets the mean of frames i .. i+window-1; the last window-1
  frames reuse the mean of the last full window; a sequence shorter than `window` uses its
  overall mean everywhere. A moving face is then aligned where it will be about window/2
  frames later. Centred (an option): frames i-window//2 .. i+window//2, the window shrinking
  at both ends; no lag.
  """
  points = np.asarray(points, np.float64)
  count = len(points)
  if count == 0:
    return points.copy()
  cumulative = np.concatenate([np.zeros((1,) + points.shape[1:]), np.cumsum(points, axis=0)])
  if centred:
    half = window // 2
    index = np.arange(count)
    starts, ends = np.maximum(index - half, 0), np.minimum(index + half + 1, count)
    shape = (-1,) + (1,) * (points.ndim - 1)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts).reshape(shape)
  width = min(window, count)
  starts = np.minimum(np.arange(count), count - width)
  return (cumulative[starts + width] - cumulative[starts]) / width


def transforms(points: np.ndarray, reference: np.ndarray, window: int = SMOOTHING_WINDOW,
               centred: bool = False) -> np.ndarray:
  """Per-frame [T, 2, 3] source->aligned similarity from [T, 5, 2] points, smoothed."""
  smooth = smoothed_points(points, window, centred)
  return np.stack([similarity_matrix(p, reference) for p in smooth]) if len(smooth) else \
      np.zeros((0, 2, 3))


def transforms_224(landmarks_or_points: np.ndarray, window: int = SMOOTHING_WINDOW) -> np.ndarray:
  """[T, 2, 3] transforms to the 224 reference from [T, 478, d] landmarks or [T, 5, 2] points."""
  points = np.asarray(landmarks_or_points)
  if points.shape[-2] != 5:
    points = align_points_224(points)
  return transforms(points, reference_points_224(), window)


def transforms_112(landmarks_or_points: np.ndarray, window: int = SMOOTHING_WINDOW) -> np.ndarray:
  """[T, 2, 3] transforms to the ArcFace template from [T, 478, d] or [T, 5, 2] points."""
  points = np.asarray(landmarks_or_points)
  if points.shape[-2] != 5:
    points = align_points_112(points)
  return transforms(points, reference_points_112(), window)


def warp(image: np.ndarray, matrix: np.ndarray,
         size: int | Sequence[int] = constants.FACE_SIZE) -> np.ndarray:
  """Warps an RGB uint8 frame with a [2, 3] source->output matrix into a size x size face.

  Bilinear, black outside the frame, like the authors' skimage warp (which truncates instead
  of rounding: at most one grey level apart).
  """
  width, height = (size, size) if np.isscalar(size) else size
  return cv2.warpAffine(image, np.asarray(matrix, np.float64), (int(width), int(height)),
                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
  """Maps [..., N, 2 or 3] points with a [2, 3] similarity; a z column is scaled with x, y.

  FaceMesh's z has the same pixel scale as x, so a similarity's scale applies to it too.
  """
  matrix = np.asarray(matrix, np.float64)
  points = np.asarray(points, np.float64)
  out = points.copy()
  out[..., :2] = points[..., :2] @ matrix[:, :2].T + matrix[:, 2]
  if points.shape[-1] > 2:
    out[..., 2:] = points[..., 2:] * np.sqrt(abs(np.linalg.det(matrix[:, :2])))
  return out
