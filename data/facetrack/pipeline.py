"""The face tracker: standardised video -> MTCNN boxes -> FaceMesh tracks -> aligned faces.

Three streamed passes over the decoded video (decoding again is cheaper than holding frames):
  1. detect:    MTCNN on every `stride`-th frame (shrunk to `detect_max_side`)  -> boxes
                then the authors' consistency logic                              -> crop plans
  2. landmarks: FaceMesh on every frame's crop of every plan                    -> tracks
                (full landmarks to a temporary file, alignment points in memory)
  3. render:    smoothed similarity transforms, 224x224 and 112x112 warps, landmarks in aligned
                coordinates, handed frame by frame to a sink: in memory (:class:`Track`) or
                to disk (mp4 + sidecar, data.facetrack.output).
Memory therefore stays flat in video length on the streaming path.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Optional

import cv2
import numpy as np

from data import align
from data import constants
from data import tracks as tracks_lib
from data import video
from data.facetrack import crops as crops_lib
from data.facetrack import detect as detect_lib
from data.facetrack import landmarks as landmarks_lib
from data.facetrack import memory

log = logging.getLogger(__name__)

# Below this many pixels on the short side no face is large enough for MTCNN (20 px) plus the
# 1.8x crop margin.
MIN_FRAME_SIDE = 48


SCHEDULES = ("stride", "keyframe")
# A face whose landmark box comes this close (fraction of the crop) to the crop's border is
# leaving it (keyframe schedule: detect again).
CROP_BORDER = 0.02


def add_detection_arguments(parser) -> None:
  """The detection flags of every command that tracks faces over a data set (data.facetrack,
  data.prepare): --detector, --schedule, --keyframe-interval, --people-count; their defaults
  are the authors' (the single-video commands choose robust people counting themselves)."""
  parser.add_argument("--detector", choices=detect_lib.DETECTORS, default="keras",
                      help="MTCNN implementation: keras (the mtcnn package) or jax (the same"
                           " detections in JAX)")
  parser.add_argument("--schedule", choices=SCHEDULES, default="stride",
                      help="stride: MTCNN every --stride frames (authors); keyframe: MTCNN every"
                           " --keyframe-interval frames and when FaceMesh loses a face")
  parser.add_argument("--keyframe-interval", type=int, default=10,
                      help="frames between MTCNN keyframes (--schedule keyframe)")
  parser.add_argument("--people-count", choices=crops_lib.PEOPLE_COUNTS, default="faithful",
                      help="faithful: the authors' rule (one size-matched main face);"
                           " robust: every confidently detected face within 8x of the largest")


class NoFaceError(video.VideoError):
  reason = "no_face"


class FrameTooSmallError(video.VideoError):
  reason = "too_small"


@dataclasses.dataclass(frozen=True)
class TrackerOptions:
  """Every setting of a tracking run. Defaults: the authors' pipeline, made faster.

  stride: MTCNN on every `stride`-th frame (authors: 3).
  max_faces: at most this many tracks per video (authors: 2); 1 forces single-face mode.
  detect_max_side: frames are shrunk to this longer side for MTCNN only (None: full size,
    as the authors; faces smaller than 20 px at that size are then not detected).
  detect_batch: frames per MTCNN call.
  crop_mode: "static" (authors: one union crop per track) or "follow" (crop follows the face).
  min_detected_fraction: tracks seen in fewer frames are dropped (authors: 0.2).
  smoothing_window: frames averaged for each transform (authors: 5).
  centred_smoothing: average frames i-2..i+2 instead of the authors' i..i+4 (which aligns a
    moving face where it will be two frames later).
  max_seconds: only the first seconds of a video (None: all of it).
  with_112: also produce 112x112 ArcFace-aligned faces.
  detector: "keras" (the mtcnn package) or "jax" (the same detector in JAX, at parity and
    faster; data.facetrack.mtcnn_jax).
  schedule: "stride" (the authors': MTCNN on every `stride`-th frame, FaceMesh on every frame
    of the crops planned from those boxes) or "keyframe": MTCNN on every
    `keyframe_interval`-th frame only, FaceMesh tracking in between, and MTCNN again on a frame
    where FaceMesh loses a face it had (the legacy FaceMesh re-detects by itself when its
    tracking confidence drops below min_tracking_confidence, so no face means that failed
    too) or where the face's landmark box touches its crop's border; that detection re-places
    the crop (follow: until the next keyframe; static: the union grows), at most once every
    `redetect_gap` frames. Crop plans, tracks, interpolation, smoothing and alignment are the
    same code in both schedules.
  keyframe_mesh_faces: FaceMesh's max_num_faces in the keyframe schedule (its own is
    facemesh.max_num_faces, the authors' 2). The legacy FaceMesh runs its face detector on
    every frame where it tracks fewer faces than that, which with one face per crop is every
    frame; in the keyframe schedule finding faces is MTCNN's job, so 1 lets FaceMesh only
    track (measured: 8-26% more frames per CPU-second on the benchmark clip).
  people_count: "faithful" (the authors' rule; data.prepare's default) or "robust" (counts
    confidently detected faces of any size within 8x of the largest; the single-video
    commands' default), see data.facetrack.crops.
  """
  stride: int = 3
  max_faces: int = 2
  detect_max_side: Optional[int] = 640
  detect_batch: int = 8
  crop_mode: str = "static"
  thresholds: crops_lib.Thresholds = crops_lib.Thresholds()
  mtcnn: detect_lib.MtcnnSettings = detect_lib.MtcnnSettings()
  facemesh: landmarks_lib.FaceMeshSettings = landmarks_lib.FaceMeshSettings()
  min_detected_fraction: float = 0.2
  smoothing_window: int = align.SMOOTHING_WINDOW
  centred_smoothing: bool = False
  max_seconds: Optional[float] = constants.MAX_SECONDS
  with_112: bool = True
  people_count: str = "faithful"
  detector: str = "keras"
  schedule: str = "stride"
  keyframe_interval: int = 10
  redetect_gap: int = 5
  keyframe_mesh_faces: int = 1

  def __post_init__(self):
    if self.stride < 1:
      raise ValueError(f"stride must be >= 1, got {self.stride}")
    if self.max_faces < 1:
      raise ValueError(f"max_faces must be >= 1, got {self.max_faces}")
    if self.crop_mode not in ("static", "follow"):
      raise ValueError(f"crop_mode must be 'static' or 'follow', got {self.crop_mode!r}")
    if self.detector not in detect_lib.DETECTORS:
      raise ValueError(f"detector must be one of {detect_lib.DETECTORS}, got {self.detector!r}")
    if self.schedule not in SCHEDULES:
      raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
    if self.keyframe_interval < 1 or self.redetect_gap < 1:
      raise ValueError("keyframe_interval and redetect_gap must be >= 1")
    if self.keyframe_mesh_faces < 1:
      raise ValueError(f"keyframe_mesh_faces must be >= 1, got {self.keyframe_mesh_faces}")
    if self.people_count not in crops_lib.PEOPLE_COUNTS:
      raise ValueError(f"people_count must be one of {crops_lib.PEOPLE_COUNTS},"
                       f" got {self.people_count!r}")


@dataclasses.dataclass
class Analysis:
  """What passes 1 and 2 learnt about a video."""
  info: video.VideoInfo
  num_frames: int
  plans: list
  tracks: list                  # LandmarkTrack per kept face
  seen_counts: list             # per plan: frames each FaceMesh candidate was seen in
  timings: dict


@dataclasses.dataclass
class RenderedFrame:
  """One frame of one track, as the render pass hands it to a sink."""
  index: int
  time: float
  face_224: np.ndarray
  face_112: Optional[np.ndarray]
  landmarks_224: np.ndarray     # [478, 3] float32
  transform_224: np.ndarray     # [2, 3]
  transform_112: np.ndarray     # [2, 3]
  detected: bool


def track_name(video_id: str, plan_multi: bool, part: int) -> str:
  """The authors' output names: `id` for one face, `id@part1`, `id@part2` in multi mode."""
  return f"{video_id}@part{part + 1}" if plan_multi else video_id


class FaceTracker:
  """Runs the pipeline; holds one MTCNN (create one per process and reuse it)."""

  def __init__(self, options: TrackerOptions = TrackerOptions(),
               detector: Optional[detect_lib.FaceDetector] = None,
               threads: Optional[int] = None):
    self.options = options
    self._detector = detector      # may be shared between trackers with different options
    self._threads = threads

  @property
  def detector(self):
    """MTCNN (options.detector), created on first use (TensorFlow / JAX imported then)."""
    if self._detector is None:
      self._detector = detect_lib.make_detector(self.options.detector, self.options.mtcnn,
                                                threads=self._threads,
                                                batch_size=self.options.detect_batch)
    return self._detector

  def analyse(self, path, store: landmarks_lib.LandmarkStore) -> Analysis:
    """Passes 1 and 2. Raises VideoError subclasses (incl. NoFaceError, FrameTooSmallError)."""
    o = self.options
    timings = {}
    start = time.perf_counter()
    info = video.probe(path)
    if min(info.width, info.height) < MIN_FRAME_SIDE:
      raise FrameTooSmallError(path, f"frames are {info.width}x{info.height}; face tracking"
                               f" needs at least {MIN_FRAME_SIDE} px on the short side")
    keyframes = o.schedule == "keyframe"
    detections = detect_lib.detect_video(
        path, self.detector, stride=o.keyframe_interval if keyframes else o.stride,
        detect_max_side=o.detect_max_side, batch_size=o.detect_batch,
        max_seconds=o.max_seconds, info=info)
    plans = crops_lib.plan_crops(detections, max_faces=o.max_faces, mode=o.crop_mode,
                                 thresholds=o.thresholds, people_count=o.people_count)
    timings["detect_s"] = time.perf_counter() - start
    if not plans:
      raise NoFaceError(path, f"MTCNN found no face in any of {detections.num_frames} frames")
    start = time.perf_counter()
    mesh = (dataclasses.replace(o.facemesh, max_num_faces=o.keyframe_mesh_faces) if keyframes
            else o.facemesh)
    trackers = [landmarks_lib.CropTracker(p.part, p.multi, store, mesh) for p in plans]
    redetector = _Redetector(self.detector, detections, o) if keyframes else None
    try:
      count = 0
      for frame in video.iter_frames(path, max_seconds=o.max_seconds):
        count = frame.index + 1
        if frame.index >= detections.num_frames:
          break
        lost = []
        for plan, tracker in zip(plans, trackers):
          x1, y1, x2, y2 = plan.boxes[frame.index]
          found = tracker.process(frame.index, frame.image[y1:y2, x1:x2], (x1, y1))
          if redetector is not None and redetector.leaving(tracker, found):
            lost.append((plan, tracker))
        if lost and redetector.ready(frame.index):
          for plan, tracker in redetector.replace(frame, lost):
            x1, y1, x2, y2 = plan.boxes[frame.index]
            tracker.process(frame.index, frame.image[y1:y2, x1:x2], (x1, y1))
        if frame.index % memory.RELEASE_EVERY == memory.RELEASE_EVERY - 1:
          memory.release_free_memory()
      num_frames = min(count, detections.num_frames)
      seen = [t.seen_counts for t in trackers]
      kept = [t.finish(num_frames, o.min_detected_fraction) for t in trackers]
    finally:
      for tracker in trackers:
        tracker.close()
    timings["landmarks_s"] = time.perf_counter() - start
    timings["detections"] = len(detections.frame_indices) + (
        redetector.count if redetector is not None else 0)
    kept = [t for t in kept if t is not None]
    if not kept:
      raise NoFaceError(path, f"MTCNN found faces but FaceMesh saw none of them in at least"
                        f" {o.min_detected_fraction:.0%} of the {num_frames} frames"
                        f" (frames seen per candidate: {seen})")
    return Analysis(info=info, num_frames=num_frames, plans=plans, tracks=kept,
                    seen_counts=seen, timings=timings)

  def render(self, path, analysis: Analysis, sinks: list) -> None:
    """Pass 3: hands every frame of every kept track to its sink (same order as tracks)."""
    o = self.options
    start = time.perf_counter()
    matrices = []
    for track in analysis.tracks:
      m224 = align.transforms(track.points(align.FACEMESH_ALIGN_INDICES),
                              align.reference_points_224(), o.smoothing_window,
                              o.centred_smoothing)
      points_112 = np.stack([track.points(group).mean(axis=1)
                             for group in align.FACEMESH_ARCFACE_GROUPS], axis=1)
      m112 = align.transforms(points_112, align.reference_points_112(), o.smoothing_window,
                              o.centred_smoothing)
      matrices.append((m224, m112))
    for frame in video.iter_frames(path, max_seconds=o.max_seconds):
      if frame.index >= analysis.num_frames:
        break
      for track, (m224, m112), sink in zip(analysis.tracks, matrices, sinks):
        i = frame.index
        sink.add(RenderedFrame(
            index=i, time=frame.time,
            face_224=align.warp(frame.image, m224[i], constants.FACE_SIZE),
            face_112=(align.warp(frame.image, m112[i], constants.IDENTITY_FACE_SIZE)
                      if o.with_112 else None),
            landmarks_224=align.apply(m224[i], track.landmarks(i)).astype(np.float32),
            transform_224=m224[i], transform_112=m112[i], detected=bool(track.detected[i])))
      if frame.index % memory.RELEASE_EVERY == memory.RELEASE_EVERY - 1:
        memory.release_free_memory()
    analysis.timings["render_s"] = time.perf_counter() - start

  def track(self, path, video_id: Optional[str] = None) -> list:
    """All tracks of a video as in-memory :class:`data.tracks.Track` objects.

    Holds every aligned frame in memory: meant for videos of at most `max_seconds`
    (default constants.MAX_SECONDS); longer inputs are cut there.
    Raises VideoError subclasses (reason codes as in the manifest), NoFaceError included.
    """
    path = str(path)
    video_id = video_id or _default_id(path)
    store = landmarks_lib.LandmarkStore()
    try:
      analysis = self.analyse(path, store)
      sinks = [MemorySink(self.options.with_112) for _ in analysis.tracks]
      self.render(path, analysis, sinks)
    finally:
      store.close()
    audio = video.read_audio(path, end=analysis.num_frames / constants.FPS)
    if audio is not None:
      audio = fit_length(audio, audio_samples(analysis.num_frames))
    info = analysis.info
    return [sink.track(video_id=video_id, video_path=path, track_index=t.part,
                       name=track_name(video_id, t.multi, t.part), audio=audio,
                       source_size=(info.width, info.height), source_fps=info.source_fps)
            for t, sink in zip(analysis.tracks, sinks)]


class _Redetector:
  """Keyframe schedule: MTCNN on a frame where a face is lost or leaving its crop, and the
  crops of those faces re-placed around the detections."""

  def __init__(self, detector, detections: detect_lib.Detections, options: TrackerOptions):
    self._detector, self._options = detector, options
    self._keyframes = np.asarray(detections.frame_indices)
    self._frame_size = detections.frame_size
    self._last = -options.redetect_gap
    self.count = 0

  @staticmethod
  def leaving(tracker: landmarks_lib.CropTracker, found: list) -> bool:
    """FaceMesh lost a face this crop had, or the face touches the crop's border."""
    if not found:
      return any(tracker.seen_counts)
    return any(box[0] < CROP_BORDER or box[1] < CROP_BORDER or box[2] > 1 - CROP_BORDER or
               box[3] > 1 - CROP_BORDER for box in found)

  def ready(self, index: int) -> bool:
    return index - self._last >= self._options.redetect_gap

  def replace(self, frame: video.Frame, lost: list) -> list:
    """Detects on `frame`; re-places each lost plan's crop on its face. Returns the plans
    whose crop changed (with their trackers), to run FaceMesh again on this frame."""
    o = self._options
    self._last = frame.index
    self.count += 1
    image = frame.image
    height, width = image.shape[:2]
    scale = 1.0
    if o.detect_max_side and max(width, height) > o.detect_max_side:
      scale = o.detect_max_side / max(width, height)
      image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                         interpolation=cv2.INTER_AREA)
    boxes = self._detector.detect([image])[0].copy()
    boxes[:, 0:4] /= scale
    boxes = boxes[boxes[:, 4] > o.thresholds.robust_confidence]
    later = self._keyframes[self._keyframes > frame.index]
    end = int(later[0]) if o.crop_mode == "follow" and len(later) else len(lost[0][0].boxes)
    changed = []
    for plan, tracker in lost:
      current = plan.boxes[frame.index]
      centre = (current[:2] + current[2:]) / 2
      side = current[2] - current[0]
      near = [b for b in boxes
              if np.all(np.abs(b[:2] + b[2:4] / 2 - centre) < side / 2)]
      if not near:
        continue
      box = min(near, key=lambda b: np.hypot(*(b[:2] + b[2:4] / 2 - centre)))
      region = crops_lib.clip(crops_lib.enlarge(box, o.thresholds.enlarge), self._frame_size)
      if o.crop_mode == "static":
        region = crops_lib._union(region, current)
      if np.array_equal(region, current):
        continue
      plan.boxes[frame.index:end] = region
      changed.append((plan, tracker))
    return changed


def audio_samples(num_frames: int, fps: float = constants.FPS,
                  sample_rate: int = constants.SAMPLE_RATE) -> int:
  """Audio samples covering `num_frames` frames."""
  return int(round(num_frames * sample_rate / fps))


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
  """Cuts or zero-pads audio to exactly `length` samples."""
  if len(audio) >= length:
    return audio[:length]
  return np.concatenate([audio, np.zeros(length - len(audio), np.float32)])


def _default_id(path: str) -> str:
  import pathlib
  return pathlib.Path(path).stem


class MemorySink:
  """Collects rendered frames into a Track."""

  def __init__(self, with_112: bool = True):
    self._frames = []
    self._with_112 = with_112

  def add(self, frame: RenderedFrame) -> None:
    self._frames.append(frame)

  def track(self, *, audio, **fields) -> tracks_lib.Track:
    frames = self._frames
    return tracks_lib.Track(
        fps=float(constants.FPS),
        timestamps=np.array([f.time for f in frames], np.float64),
        frames_224=np.stack([f.face_224 for f in frames]),
        frames_112=np.stack([f.face_112 for f in frames]) if self._with_112 else None,
        landmarks_224=np.stack([f.landmarks_224 for f in frames]),
        transforms_224=np.stack([f.transform_224 for f in frames]).astype(np.float32),
        transforms_112=np.stack([f.transform_112 for f in frames]).astype(np.float32),
        detected=np.array([f.detected for f in frames], bool),
        audio=None if audio is None else audio.copy(), has_audio=audio is not None,
        **fields)


_DEFAULT_TRACKERS = {}


def track_video(path, options: Optional[TrackerOptions] = None,
                video_id: Optional[str] = None, *, people_count: Optional[str] = None) -> list:
  """Tracks faces in one video and returns its tracks in memory (see FaceTracker.track).

  `people_count` ("faithful" / "robust"), when given, overrides the options' own.
  Reuses one FaceTracker (and MTCNN) per options in this process.
  """
  options = options or TrackerOptions()
  if people_count is not None:
    options = dataclasses.replace(options, people_count=people_count)
  tracker = _DEFAULT_TRACKERS.get(options)
  if tracker is None:
    tracker = _DEFAULT_TRACKERS[options] = FaceTracker(options)
  return tracker.track(path, video_id=video_id)
