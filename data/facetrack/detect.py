"""Pass 1 of the tracker: MTCNN face boxes on every k-th standardised frame.

The authors ran facenet-pytorch's MTCNN (pyramid factor 0.6, stage thresholds 0.6/0.7/0.7,
smallest face 20 px) on every 3rd frame in batches and reused each frame's boxes for the
frames in between. We run the `mtcnn` package (TensorFlow, the same three networks and
weights) with the same settings, in batches, on frames shrunk so that their longer side is at
most `detect_max_side` (the boxes only choose crop regions; the landmarks come from FaceMesh on
full-resolution crops, so this costs no alignment accuracy and saves most of the time).

Like facenet-pytorch's default (select_largest), boxes are listed largest first: what the
authors' code calls "the most confident face" is the first box, i.e. the largest.

Two implementations of that detector (`detector`): "keras", the package itself, and "jax", the
same networks, weights and procedure in JAX (data.facetrack.mtcnn_jax; boxes within 1e-4 px of
the package's, tested), several times faster on CPU.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
from typing import Optional

import numpy as np

from data import video
from data.facetrack import memory

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MtcnnSettings:
  min_face_size: int = 20
  scale_factor: float = 0.6
  stage_thresholds: tuple = (0.6, 0.7, 0.7)


class FaceDetector:
  """MTCNN on batches of RGB frames; one instance per process (it holds TensorFlow models)."""

  def __init__(self, settings: MtcnnSettings = MtcnnSettings(), threads: Optional[int] = None):
    """`threads`: TensorFlow's thread pools (None: its default, all cores)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # imported only when a detector is needed
    if threads:
      try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
      except RuntimeError:  # TensorFlow already started in this process: keep its pools
        log.debug("TensorFlow already initialised; thread settings unchanged")
    from mtcnn import MTCNN
    self.settings = settings
    self._mtcnn = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")

  def detect(self, images: list) -> list:
    """Boxes per image: float64 [n, 5] rows (x, y, width, height, confidence), largest first."""
    if not images:
      return []
    pnet, rnet, onet = self.settings.stage_thresholds
    results = self._mtcnn.detect_faces(
        list(images), min_face_size=self.settings.min_face_size,
        scale_factor=self.settings.scale_factor, threshold_pnet=pnet, threshold_rnet=rnet,
        threshold_onet=onet)
    out = []
    for faces in results:
      rows = np.array([list(face["box"]) + [face["confidence"]] for face in faces],
                      np.float64).reshape(-1, 5)
      order = np.argsort(-(rows[:, 2] * rows[:, 3]), kind="stable")
      out.append(rows[order])
    return out


class JaxFaceDetector:
  """The same detector in JAX (data.facetrack.mtcnn_jax); same output as FaceDetector."""

  def __init__(self, settings: MtcnnSettings = MtcnnSettings(), threads: Optional[int] = None,
               batch_size: int = 8):
    if threads == 1 and "jax" not in sys.modules:   # XLA reads this at start-up only
      os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                 " --xla_cpu_multi_thread_eigen=false").strip()
    from data.facetrack import mtcnn_jax
    self.settings = settings
    pnet, rnet, onet = settings.stage_thresholds
    self._config = mtcnn_jax.MtcnnConfig(
        min_face_size=settings.min_face_size, scale_factor=settings.scale_factor,
        threshold_pnet=pnet, threshold_rnet=rnet, threshold_onet=onet)
    self._mtcnn = mtcnn_jax.shared(batch_size)

  def detect_raw(self, images: list) -> list:
    """Per image float64 [n, 15]: x1, y1, x2, y2, confidence, 5 landmark x, 5 landmark y."""
    return self._mtcnn.detect(images, self._config) if len(images) else []

  def detect(self, images: list) -> list:
    """Boxes per image: float64 [n, 5] rows (x, y, width, height, confidence), largest first,
    rounded to whole pixels as the package's JSON output."""
    out = []
    for rows in self.detect_raw(images):
      boxes = np.round(np.stack([rows[:, 0], rows[:, 1], rows[:, 2] - rows[:, 0],
                                 rows[:, 3] - rows[:, 1]], axis=1))
      found = np.concatenate([boxes, rows[:, 4:5]], axis=1).reshape(-1, 5)
      order = np.argsort(-(found[:, 2] * found[:, 3]), kind="stable")
      out.append(found[order])
    return out


DETECTORS = ("keras", "jax")


def make_detector(kind: str, settings: MtcnnSettings = MtcnnSettings(),
                  threads: Optional[int] = None, batch_size: int = 8):
  """The MTCNN implementation named `kind` ("keras": the mtcnn package; "jax": ours)."""
  if kind == "keras":
    return FaceDetector(settings, threads=threads)
  if kind == "jax":
    return JaxFaceDetector(settings, threads=threads, batch_size=batch_size)
  raise ValueError(f"detector must be one of {DETECTORS}, got {kind!r}")


@dataclasses.dataclass
class Detections:
  """MTCNN boxes of one video, in full-frame pixels, on frames 0, stride, 2*stride, ...

  Frames between two detection frames reuse the earlier one's boxes, as the authors do.
  """
  num_frames: int
  frame_size: tuple                 # (width, height) as displayed
  stride: int
  frame_indices: np.ndarray         # [D] int
  boxes: list                       # D arrays [n, 5]: x, y, width, height, confidence

  def frame_weights(self) -> np.ndarray:
    """How many frames each detection stands for (the authors count per frame)."""
    ends = np.append(self.frame_indices[1:], self.num_frames)
    return np.maximum(ends - self.frame_indices, 0)

  @property
  def any_face(self) -> bool:
    return any(len(b) for b in self.boxes)


def detect_video(path, detector: FaceDetector, *, stride: int = 3,
                 detect_max_side: Optional[int] = 640, batch_size: int = 8,
                 max_seconds: Optional[float] = None, info: Optional[video.VideoInfo] = None
                 ) -> Detections:
  """Runs MTCNN on every `stride`-th standardised frame of `path` (streamed)."""
  info = info or video.probe(path)
  stream = video.FrameStream(path, max_seconds=max_seconds, stride=stride,
                             max_side=detect_max_side or None)
  indices, boxes, batch, batch_indices = [], [], [], []

  def flush():
    if len(indices) % memory.RELEASE_EVERY < len(batch):
      memory.release_free_memory()
    for index, image, found in zip(batch_indices, batch, detector.detect(batch)):
      scale = np.array([info.width / image.shape[1], info.height / image.shape[0]])
      found = found.copy()
      found[:, 0:2] *= scale
      found[:, 2:4] *= scale
      indices.append(index)
      boxes.append(found)
    batch.clear()
    batch_indices.clear()

  for frame in stream:
    batch.append(frame.image)
    batch_indices.append(frame.index)
    if len(batch) >= batch_size:
      flush()
  flush()
  return Detections(num_frames=stream.num_frames, frame_size=(info.width, info.height),
                    stride=stride, frame_indices=np.asarray(indices, np.int64), boxes=boxes)
