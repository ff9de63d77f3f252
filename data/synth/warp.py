"""Landmark-driven image warps: piecewise-affine maps over a fixed triangulation, similarity fits.

A piecewise-affine warp moves every triangle of a landmark mesh by the affine map that takes its
three corners to their new positions. The maps here are backward maps for `cv2.remap`: for each
output pixel, the triangle it falls in (rasterised with OpenCV) gives the affine map back into
the source image. The triangulation is computed once on the neutral landmarks and reused for
every displaced version of them, so motion never changes the mesh topology (Delaunay of each
frame's points would re-triangulate and make seams jump).
"""
from __future__ import annotations

import numpy as np
import cv2
from scipy import spatial

_SUBPIXEL_BITS = 4


def triangulate(points: np.ndarray) -> np.ndarray:
  """Delaunay triangles [T, 3] (indices into `points`)."""
  return spatial.Delaunay(np.asarray(points, np.float64)).simplices.astype(np.int32)


def ring_anchors(center: np.ndarray, radius: float, count: int) -> np.ndarray:
  """`count` points on a circle: fixed anchors that confine a warp to the inside of the ring."""
  angles = np.linspace(0.0, 2 * np.pi, count, endpoint=False)
  return (center[None] + radius * np.stack([np.cos(angles), np.sin(angles)], 1)).astype(
      np.float32)


def border_anchors(width: int, height: int, per_side: int = 4) -> np.ndarray:
  """Points along the image border (corners included) so the mesh covers the whole image."""
  xs = np.linspace(0, width - 1, per_side + 1)
  ys = np.linspace(0, height - 1, per_side + 1)
  top = np.stack([xs, np.zeros_like(xs)], 1)
  bottom = np.stack([xs, np.full_like(xs, height - 1)], 1)
  left = np.stack([np.zeros_like(ys[1:-1]), ys[1:-1]], 1)
  right = np.stack([np.full_like(ys[1:-1], width - 1), ys[1:-1]], 1)
  return np.concatenate([top, bottom, left, right]).astype(np.float32)


def piecewise_affine_maps(source: np.ndarray, target: np.ndarray, triangles: np.ndarray,
                          roi: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
  """Backward maps (map_x, map_y) for the region `roi` = (x0, y0, x1, y1) of the warped image.

  Args:
    source: [P, 2] landmark positions in the source image.
    target: [P, 2] positions the landmarks move to (same topology).
    triangles: [T, 3] mesh triangles; only those touching `roi` are rasterised.
    roi: output region in pixels; pixels outside every triangle map to themselves.

  Returns:
    Two float32 arrays [y1 - y0, x1 - x0] of source coordinates, ready for `cv2.remap`.
  """
  x0, y0, x1, y1 = roi
  width, height = x1 - x0, y1 - y0
  grid_x, grid_y = np.meshgrid(np.arange(x0, x1, dtype=np.float32),
                               np.arange(y0, y1, dtype=np.float32))
  dst = target[triangles].astype(np.float64)  # [T, 3, 2]
  lo, hi = dst.min(axis=1), dst.max(axis=1)
  touching = np.nonzero((hi[:, 0] >= x0) & (lo[:, 0] <= x1) & (hi[:, 1] >= y0)
                        & (lo[:, 1] <= y1))[0]
  if not touching.size:
    return grid_x, grid_y
  dst = dst[touching]
  src = source[triangles[touching]].astype(np.float64)
  # Affine per triangle, closed form: src = A @ (dst - d0) + s0 with A = S @ inverse(D), where
  # D and S hold the two edge vectors from corner 0 as columns.
  d_edges = np.stack([dst[:, 1] - dst[:, 0], dst[:, 2] - dst[:, 0]], axis=2)  # [T', 2, 2]
  s_edges = np.stack([src[:, 1] - src[:, 0], src[:, 2] - src[:, 0]], axis=2)
  det = d_edges[:, 0, 0] * d_edges[:, 1, 1] - d_edges[:, 0, 1] * d_edges[:, 1, 0]
  degenerate = np.abs(det) < 1e-6
  det[degenerate] = 1.0
  inverse = np.stack([np.stack([d_edges[:, 1, 1], -d_edges[:, 0, 1]], 1),
                      np.stack([-d_edges[:, 1, 0], d_edges[:, 0, 0]], 1)], 1) / det[:, None, None]
  linear = s_edges @ inverse  # [T', 2, 2]
  offset = src[:, 0] - np.einsum("tij,tj->ti", linear, dst[:, 0])
  # Rows: x_src = x*M[0,0] + y*M[1,0] + M[2,0] (and column 1 for y_src), M of shape [3, 2].
  matrices = np.concatenate([linear.transpose(0, 2, 1), offset[:, None]], axis=1).astype(
      np.float32)
  # Triangle ids rasterised in output coordinates (0 = no triangle).
  ids = np.zeros((height, width), np.int32)
  scale = 1 << _SUBPIXEL_BITS
  corners = np.round((dst - [x0, y0]) * scale).astype(np.int32)
  for index in np.nonzero(~degenerate)[0]:
    cv2.fillConvexPoly(ids, corners[index], int(index) + 1, lineType=cv2.LINE_8,
                       shift=_SUBPIXEL_BITS)
  inside = ids > 0
  chosen = matrices[ids[inside] - 1]  # [N, 3, 2]
  px, py = grid_x[inside], grid_y[inside]
  map_x, map_y = grid_x.copy(), grid_y.copy()
  map_x[inside] = px * chosen[:, 0, 0] + py * chosen[:, 1, 0] + chosen[:, 2, 0]
  map_y[inside] = px * chosen[:, 0, 1] + py * chosen[:, 1, 1] + chosen[:, 2, 1]
  return map_x, map_y


def warp_region(image: np.ndarray, source: np.ndarray, target: np.ndarray,
                triangles: np.ndarray, roi: tuple[int, int, int, int],
                out: np.ndarray | None = None) -> np.ndarray:
  """Warps `image` so landmarks at `source` move to `target`, recomputing only `roi`.

  The result is written into `out` (a copy of `image` when None) and returned.
  """
  out = image.copy() if out is None else out
  x0, y0, x1, y1 = roi
  if x1 <= x0 or y1 <= y0:
    return out
  map_x, map_y = piecewise_affine_maps(source, target, triangles, roi)
  out[y0:y1, x0:x1] = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
  return out


def moving_roi(source: np.ndarray, target: np.ndarray, triangles: np.ndarray,
               shape: tuple[int, int], tolerance: float = 0.05) -> tuple[int, int, int, int]:
  """Bounding box of every triangle with a corner that moves; empty box when nothing moves."""
  moved = np.linalg.norm(target - source, axis=1) > tolerance
  touched = moved[triangles].any(axis=1)
  if not touched.any():
    return 0, 0, 0, 0
  corners = np.concatenate([source[triangles[touched]].reshape(-1, 2),
                            target[triangles[touched]].reshape(-1, 2)])
  height, width = shape
  x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 1
  x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 2
  return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)


def fit_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
  """2x3 least-squares similarity (rotation, uniform scale, translation) taking source to target."""
  from skimage import transform  # closed-form (Umeyama) least squares: no random sampling
  fitted = transform.SimilarityTransform.from_estimate(np.asarray(source, np.float64),
                                                       np.asarray(target, np.float64))
  if not fitted:
    raise ValueError(f"could not fit a similarity transform to the landmarks: {fitted}")
  return fitted.params[:2].astype(np.float32)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
  return (np.asarray(points, np.float32) @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
