"""The JAX MTCNN (data.facetrack.mtcnn_jax) against the `mtcnn` 1.0.0 package it reproduces.

Parity is checked where it matters (same detections; boxes and five landmarks within 0.5 px;
confidences within 1e-4) on real photos (scikit-image's astronaut, matplotlib's Grace Hopper,
a cat and a coffee cup without faces) and on frames decoded from the project's test videos,
with the tracker's settings (pyramid factor 0.6, thresholds 0.6 / 0.7 / 0.7) and the
package's defaults. Its building blocks (the three networks with the shipped weights, the AREA
pyramid resize, the bilinear crops) are compared with TensorFlow's at float32 precision, so a
wrong weight order, pooling padding or sampling offset fails loudly.
"""
import functools

import numpy as np
import pytest

from data import video
from data.facetrack import detect
from data.facetrack import mtcnn_jax
from tests import video_fixtures as vf

BOX_PX = 0.5
LANDMARK_PX = 0.5
CONFIDENCE = 1e-4
TRACKER = dict(min_face_size=20, scale_factor=0.6, threshold_pnet=0.6, threshold_rnet=0.7,
               threshold_onet=0.7)
DEFAULTS = dict(min_face_size=20, scale_factor=0.709, threshold_pnet=0.6, threshold_rnet=0.7,
                threshold_onet=0.8)


@functools.lru_cache(maxsize=None)
def _package():
  from mtcnn import MTCNN
  return MTCNN(stages="face_and_landmarks_detection", device="CPU:0")


@pytest.fixture(scope="module")
def ours():
  return mtcnn_jax.Mtcnn(batch_size=4)


def _photos():
  from matplotlib import cbook
  from skimage import data
  import imageio.v3 as iio
  return {"astronaut": data.astronaut(),
          "hopper": iio.imread(cbook.get_sample_data("grace_hopper.jpg"))[..., :3],
          "cat": data.chelsea(), "coffee": data.coffee()}


def _package_rows(images, settings):
  """The package's float rows per image: x1, y1, x2, y2, confidence, 5 x, 5 y."""
  rows = _package().detect_faces(list(images), output_type="numpy", box_format="xyxy",
                                 **settings)
  rows = np.asarray(rows, np.float64).reshape(-1, 16)
  return [rows[rows[:, 0] == i, 1:] for i in range(len(images))]


def _assert_same(expected, got, where):
  assert len(expected) == len(got), f"{where}: {len(expected)} faces vs {len(got)}"
  np.testing.assert_allclose(got[:, :4], expected[:, :4], atol=BOX_PX, rtol=0, err_msg=where)
  np.testing.assert_allclose(got[:, 4], expected[:, 4], atol=CONFIDENCE, rtol=0, err_msg=where)
  np.testing.assert_allclose(got[:, 5:], expected[:, 5:], atol=LANDMARK_PX, rtol=0,
                             err_msg=where)


def test_networks_match_the_package_models_with_its_weights():
  from mtcnn.stages import StageONet, StagePNet, StageRNet
  params = mtcnn_jax.load_package_params()
  rng = np.random.default_rng(0)
  for stage, network, name, shape in (
      (StagePNet, mtcnn_jax.PNet(), "pnet", (2, 37, 51, 3)),      # odd sizes: pool padding
      (StagePNet, mtcnn_jax.PNet(), "pnet", (2, 40, 52, 3)),      # even sizes: whole windows
      (StagePNet, mtcnn_jax.PNet(), "pnet", (1, 12, 13, 3)),      # one cell high
      (StageRNet, mtcnn_jax.RNet(), "rnet", (5, 24, 24, 3)),
      (StageONet, mtcnn_jax.ONet(), "onet", (5, 48, 48, 3))):
    x = rng.uniform(-1, 1, shape).astype(np.float32)
    expected = [np.asarray(out) for out in stage().model(x)]
    expected[-1] = expected[-1][..., 1]
    got = [np.asarray(out) for out in network.apply(params[name], x)]
    for e, g in zip(expected, got):
      np.testing.assert_allclose(g, e, atol=1e-5, rtol=0, err_msg=name)


def test_pyramid_resize_and_crops_match_tensorflow():
  import tensorflow as tf
  rng = np.random.default_rng(1)
  images = ((rng.integers(0, 256, (2, 240, 427, 3)) - 127.5) / 128).astype(np.float32)
  scales = mtcnn_jax.pyramid_scales(427, 240, 20, 0.6)
  assert len(scales) == 5
  for scale in scales:
    expected = tf.image.resize(images.astype(np.float64), np.asarray([240, 427]) * scale,
                               method="area").numpy()
    got = np.asarray(mtcnn_jax.area_resize(images, *mtcnn_jax.level_size(240, 427, scale)))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
  boxes = np.array([[0.1, 0.2, 0.5, 0.6], [-0.1, -0.05, 0.3, 0.4], [0.7, 0.8, 1.2, 1.1]],
                   np.float32)
  index = np.array([0, 1, 0])
  for size in (24, 48):
    expected = tf.image.crop_and_resize(images, boxes, index, (size, size)).numpy()
    got = mtcnn_jax.crop_and_resize(images, boxes, index, size)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_same_detections_as_the_package_on_a_photo(ours):
  image = _photos()["astronaut"][::2, ::2].copy()      # 256 px: quick, face still 50 px
  expected, = _package_rows([image], TRACKER)
  got, = ours.detect([image], mtcnn_jax.MtcnnConfig(**TRACKER))
  assert len(got) == 1
  _assert_same(expected, got, "astronaut")


@pytest.mark.slow
@pytest.mark.parametrize("settings", [TRACKER, DEFAULTS], ids=["tracker", "package_defaults"])
def test_same_detections_as_the_package_on_photos(ours, settings):
  config = mtcnn_jax.MtcnnConfig(**settings)
  faces = 0
  for name, image in _photos().items():
    expected, = _package_rows([image], settings)
    got, = ours.detect([image], config)
    _assert_same(expected, got, name)
    faces += len(got)
  assert faces >= 2                 # the astronaut's and Grace Hopper's faces at least


@pytest.mark.slow
def test_same_detections_as_the_package_on_test_video_frames(ours, tmp_path):
  config = mtcnn_jax.MtcnnConfig(**TRACKER)
  seen = 0
  for name, scene in (("two_faces", vf.TWO_FACES), ("distractor", vf.WITH_DISTRACTOR)):
    path = vf.write_scene(tmp_path / f"{name}.mp4", scene, fps=29)
    frames = [f.image for f in video.iter_frames(path, stride=19)][:4]   # one batch
    expected = _package_rows(frames, TRACKER)
    got = ours.detect(frames, config)
    for i, (e, g) in enumerate(zip(expected, got)):
      _assert_same(e, g, f"{name} frame {i}")
      seen += len(g)
  assert seen >= 12


def test_frames_are_padded_to_a_power_of_two_not_to_the_batch_size():
  assert [mtcnn_jax.padded_count(n, 8) for n in (1, 2, 3, 5, 8)] == [1, 2, 4, 8, 8]
  assert mtcnn_jax.padded_count(5, 6) == 6


def test_a_frame_alone_is_detected_as_in_a_batch(ours, monkeypatch):
  """A keyframe tracker's re-detection (one frame) runs a batch of one, with the same rows."""
  config = mtcnn_jax.MtcnnConfig(**TRACKER)
  frames = [vf.TWO_FACES.frame(t) for t in (0.0, 0.7, 1.4)]
  batched = ours.detect(frames, config)
  pyramid, pnet_batches = ours._pyramid, []
  monkeypatch.setattr(ours, "_pyramid", lambda params, batch, sizes: (
      pnet_batches.append(len(batch)) or pyramid(params, batch, sizes=sizes)))
  for frame, expected in zip(frames, batched):
    got, = ours.detect([frame], config)
    assert len(got) == len(expected) == 2
    _assert_same(expected, got, "one frame vs batch")
  assert pnet_batches == [1, 1, 1]


def test_detector_front_ends_agree(ours):
  """FaceDetector (the package) and JaxFaceDetector give the same rows to the tracker."""
  settings = detect.MtcnnSettings()
  jax_detector = detect.JaxFaceDetector(settings, batch_size=4)
  keras_detector = detect.FaceDetector.__new__(detect.FaceDetector)
  keras_detector.settings, keras_detector._mtcnn = settings, _package()
  frames = [vf.TWO_FACES.frame(t) for t in (0.0, 0.7, 1.4)]
  for expected, got in zip(keras_detector.detect(frames), jax_detector.detect(frames)):
    assert expected.shape == got.shape and len(got) == 2
    np.testing.assert_array_equal(got[:, :4], expected[:, :4])    # whole pixels, same rounding
    np.testing.assert_allclose(got[:, 4], expected[:, 4], atol=CONFIDENCE)
  with pytest.raises(ValueError, match="detector"):
    detect.make_detector("torch")
