"""Similarity alignment: reference points, exact recovery, the authors' smoothing rule, warps."""
import numpy as np
import pytest

from data import align


def _similarity(scale, angle_degrees, tx, ty):
  theta = np.radians(angle_degrees)
  linear = scale * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
  return np.concatenate([linear, [[tx], [ty]]], axis=1)


def test_reference_points_come_from_the_package():
  ref224, ref112 = align.reference_points_224(), align.reference_points_112()
  assert ref224.shape == ref112.shape == (5, 2)
  # Nose below the eyes, image-left eye corners left of the image-right ones.
  assert ref224[0, 1] > ref224[1:, 1].max()
  assert ref224[1, 0] < ref224[2, 0] < ref224[3, 0] < ref224[4, 0]
  np.testing.assert_allclose(ref112[0], [38.2946, 51.6963], atol=1e-4)
  with pytest.raises(ValueError):
    ref224[0, 0] = 0.0                        # cached arrays are read-only


def test_similarity_recovers_a_known_transform():
  rng = np.random.default_rng(0)
  source = rng.uniform(0, 500, (5, 2))
  matrix = _similarity(0.7, 23.0, 40.0, -12.0)
  target = align.apply(matrix, source)
  np.testing.assert_allclose(align.similarity_matrix(source, target), matrix, atol=1e-9)
  with pytest.raises(ValueError, match="finite"):
    align.similarity_matrix(np.full((5, 2), np.nan), target)


def test_forward_smoothing_is_the_authors_rule():
  values = np.arange(7.0)
  # Frame i: mean of frames i..i+4; the last four reuse the last full window.
  np.testing.assert_allclose(align.smoothed_points(values), [2, 3, 4, 4, 4, 4, 4])
  np.testing.assert_allclose(align.smoothed_points(np.arange(3.0)), [1, 1, 1])
  np.testing.assert_allclose(align.smoothed_points(values, centred=True),
                             [1, 1.5, 2, 3, 4, 4.5, 5])
  points = np.random.default_rng(1).normal(size=(9, 5, 2))
  np.testing.assert_allclose(align.smoothed_points(points)[2], points[2:7].mean(axis=0))


def test_transforms_map_landmarks_onto_the_references():
  # A face whose alignment points sit exactly on the references, moved by a known similarity.
  landmarks = np.zeros((478, 3))
  landmarks[list(align.FACEMESH_ALIGN_INDICES), :2] = align.reference_points_224()
  template = align.reference_points_112()
  for group, point in zip(align.FACEMESH_ARCFACE_GROUPS, template):
    landmarks[list(group), :2] = point * 2     # the 112 template at twice its scale
  moved = np.stack([align.apply(_similarity(1.5, 10.0 * t, 30.0 * t, 5.0), landmarks)
                    for t in range(6)])
  m224 = align.transforms_224(moved, window=1)
  m112 = align.transforms_112(moved, window=1)
  for t in range(6):
    np.testing.assert_allclose(align.align_points_224(align.apply(m224[t], moved[t])),
                               align.reference_points_224(), atol=1e-6)
    np.testing.assert_allclose(align.align_points_112(align.apply(m112[t], moved[t])),
                               template, atol=1e-6)


def test_apply_scales_depth_with_the_similarity():
  points = np.array([[10.0, 20.0, 4.0]])
  out = align.apply(_similarity(2.0, 30.0, 1.0, 2.0), points)
  assert out[0, 2] == pytest.approx(8.0)


def test_warp_moves_pixels_where_the_matrix_says():
  image = np.zeros((300, 400, 3), np.uint8)
  image[140:160, 240:260] = 255                # a white square centred at (249.5, 149.5)
  matrix = _similarity(0.5, 40.0, 20.0, 30.0)
  face = align.warp(image, matrix, 224)
  assert face.shape == (224, 224, 3) and face.dtype == np.uint8
  ys, xs = np.nonzero(face[..., 0] > 127)
  expected = align.apply(matrix, np.array([[249.5, 149.5]]))[0]
  assert np.hypot(xs.mean() - expected[0], ys.mean() - expected[1]) < 0.5
  assert align.warp(image, matrix, (112, 112)).shape == (112, 112, 3)
