"""TFRecord schema of aligned face tracks: one `tf.train.SequenceExample` per face track.

Schema version 2 (version 1 is still read)
------------------------------------------
Context (one value per track):

==========================  =======  ======================================================
key                         type     meaning
==========================  =======  ======================================================
schema_version              int64    :data:`SCHEMA_VERSION`; readers refuse versions not in
                                     :data:`READABLE_VERSIONS`
video/id                    bytes    dataset-unique video id (e.g. ``000_003`` for FF++)
video/path                  bytes    source file relative to the dataset root
video/fps                   float    frame rate of the frames below (29 after standardising)
video/width, video/height   int64    source frame size (pixels)
track/index                 int64    0-based track index within the video
track/num_tracks            int64    tracks kept for this video
track/name                  bytes    the face tracker's output name: the video id, or
                                     ``<id>@part<k>`` in multi-face mode (v2; v1: absent)
dataset, split              bytes    e.g. ``faceforensics``, ``train``
label                       int64    0 real, 1 fake (data.constants)
category, method            bytes    e.g. ``FVRA-WL`` / ``wav2lip``; ``Deepfakes``
identity                    bytes    identity shown (the source identity for real videos)
source_id, target_id        bytes    ids of the identities a fake was made from ('' if n/a)
audio/has_audio             int64    1 when the track carries real audio
audio/sample_rate           int64    44100
audio/start_time            float    time (s) of the first audio sample in the source video
audio/pcm_s16le             bytes    mono 16-bit little-endian PCM ('' when has_audio == 0)
audio/codec                 bytes    codec of the source's audio stream, e.g. ``aac`` (v2)
audio/frame_size            int64    samples per codec frame of that stream (AAC: 1024;
                                     0 when unknown or not frame based) (v2)
audio/tail_pcm_s16le        bytes    the source's decoded samples after the track's end, up
                                     to the end of the codec frame holding the track's last
                                     sample (v2): what an ffmpeg wav of the track also holds
audio/pcm_scale             float    the PCM's full scale: sample = value / pcm_scale (v2;
                                     v1: 32767). data.prepare uses the grid of the first
                                     channel of ``ffmpeg -ac 2 -f wav``: 32768 / sqrt(2) for a
                                     mono source (the up-mix), 32768 for stereo
==========================  =======  ======================================================

Feature lists (one entry per frame, all of equal length):

==========================  =======  ======================================================
image/encoded               bytes    JPEG of the 224x224 RGB face aligned for FakeOut
image_112/encoded           bytes    JPEG of the 112x112 face aligned to the ArcFace template
frame/timestamp             float    presentation time (s) in the source video
frame/detected              int64    1 when FaceMesh saw the face, 0 when interpolated
frame/landmarks             bytes    float16 [478, 3] FaceMesh points in 224 aligned pixels
                                     (x, y, and z on the same pixel scale)
frame/transform             float    [6] row-major 2x3 similarity: source pixels -> 224
frame/transform_112         float    [6] the same for the 112x112 ArcFace alignment
==========================  =======  ======================================================

Why raw PCM rather than a spectrogram: the two detectors need different front ends (FakeOut's
44.1 kHz 80-bin log-mel referenced to a per-video maximum; Whisper's 16 kHz log-mel), and both
normalise over the tensor they are given, so a stored spectrogram would fix one detector's
windowing. 16-bit mono PCM costs 88 kB/s, a quarter of the JPEG frames.

Why version 2 records the codec, its frame size and the tail: the released FakeOut evaluation
places its audio windows over the wav that ``ffmpeg -i track.mp4 -ac 2 -f wav`` writes, and for
AAC that wav holds whole 1024-sample frames (a 6.0 s track: 265216 samples, not 264600);
``fakeout_jax.input_pipeline`` rebuilds that wav length (``eval_audio_alignment='released'``).
The track name tells which tracks the released builder scored with silence (``@partN``). The
PCM scale puts the stored samples on the wav's 16-bit grid: the two quantisations would
otherwise differ by noise about 96 dB below full scale, which moves log-mel cells near the 80 dB
floor by up to 1 dB and the released-mode logits by 2e-4 of their scale.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pathlib
import re
import secrets
from typing import Iterable, Iterator, Mapping, Optional, Sequence

import cv2
import numpy as np

from data import constants

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
# Versions parse_track reads: v1 records lack the v2 keys, which read as their defaults
# ('' / 0: no codec frames, no tail, no track name).
READABLE_VERSIONS = (1, 2)
NUM_LANDMARKS = 478
LANDMARK_DIMS = 3
JPEG_QUALITY = 95
PCM_SCALE = 32767.0   # full scale of schema v1's PCM (and the default)
# ffmpeg's mono -> stereo up-mix gain (1/sqrt(2), as float32: its rematrix runs in float).
FFMPEG_UPMIX_GAIN = float(np.float32(0.5 ** 0.5))
# Suffix of shards being written (ShardWriter); never read as shards, removed when stale.
PARTIAL_SUFFIX = ".partial"


class RecordError(ValueError):
  """A record or shard that cannot be read: names the file and the record."""


class SchemaVersionError(RecordError):
  pass


@dataclasses.dataclass(frozen=True)
class TrackMetadata:
  """Everything a record says about its video besides pixels and samples."""
  video_id: str
  dataset: str
  label: int
  split: str = ""
  video_path: str = ""
  category: str = ""
  method: str = ""
  identity: str = ""
  source_id: str = ""
  target_id: str = ""
  track_index: int = 0
  num_tracks: int = 1
  track_name: str = ""
  width: int = 0
  height: int = 0

  def __post_init__(self):
    if self.label not in (constants.REAL, constants.FAKE):
      raise ValueError(f"label must be {constants.REAL} (real) or {constants.FAKE} (fake),"
                       f" got {self.label!r} for video {self.video_id!r}")


@dataclasses.dataclass
class TrackArrays:
  """The per-frame content of one aligned face track (see data.tracks for how it is made)."""
  frames_224: np.ndarray                 # uint8 [T, 224, 224, 3]
  timestamps: np.ndarray                 # float [T] seconds
  detected: np.ndarray                   # bool [T]
  fps: float
  frames_112: Optional[np.ndarray] = None  # uint8 [T, 112, 112, 3]
  landmarks: Optional[np.ndarray] = None   # float [T, 478, 3] in 224 aligned pixels
  transforms: Optional[np.ndarray] = None  # float [T, 2, 3] source -> 224
  transforms_112: Optional[np.ndarray] = None  # float [T, 2, 3] source -> 112
  audio: Optional[np.ndarray] = None       # float32 mono in [-1, 1] at 44.1 kHz
  audio_start_time: float = 0.0
  audio_codec: str = ""                    # the source's audio codec (e.g. "aac")
  audio_frame_size: int = 0                # its samples per frame (AAC 1024; 0 unknown)
  audio_tail: Optional[np.ndarray] = None  # float32 source samples after the track's end
  audio_pcm_scale: float = PCM_SCALE       # 16-bit grid of the stored PCM (released_pcm_scale)

  def validate(self) -> None:
    n = len(self.frames_224)
    if n == 0:
      raise ValueError("a track needs at least one frame")
    expect = {"frames_224": (n, constants.FACE_SIZE, constants.FACE_SIZE, 3),
              "timestamps": (n,), "detected": (n,)}
    if self.frames_112 is not None:
      size = constants.IDENTITY_FACE_SIZE
      expect["frames_112"] = (n, size, size, 3)
    if self.landmarks is not None:
      expect["landmarks"] = (n, NUM_LANDMARKS, LANDMARK_DIMS)
    for name in ("transforms", "transforms_112"):
      if getattr(self, name) is not None:
        expect[name] = (n, 2, 3)
    wrong = [f"{k}: expected {v}, got {np.shape(getattr(self, k))}" for k, v in expect.items()
             if np.shape(getattr(self, k)) != v]
    if wrong:
      raise ValueError("track arrays have inconsistent shapes: " + "; ".join(wrong))


def _bytes(values: Iterable[bytes]):
  import tensorflow as tf
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _ints(values: Iterable[int]):
  import tensorflow as tf
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _floats(values: Iterable[float]):
  import tensorflow as tf
  return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
  ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]),
                         [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
  if not ok:
    raise ValueError(f"JPEG encoding failed for an image of shape {rgb.shape}")
  return buf.tobytes()


def released_pcm_scale(channels: Optional[int]) -> float:
  """The 16-bit grid of the first channel of ``ffmpeg -i SOURCE -ac 2 -f wav`` (the released
  FakeOut's audio): mono is up-mixed at 1/sqrt(2), stereo kept; other layouts are down-mixed
  (the first channel is then a mix, not reproduced): the v1 grid."""
  if channels == 1:
    return float(np.float32(FFMPEG_UPMIX_GAIN) * np.float32(32768.0))
  return 32768.0 if channels == 2 else PCM_SCALE


def audio_to_pcm16(audio: np.ndarray, scale: float = PCM_SCALE) -> bytes:
  """float audio in [-1, 1] -> 16-bit PCM on the grid value = round(audio * scale) (float32
  arithmetic and clipping as FFmpeg's float -> s16 conversion)."""
  values = np.rint(np.asarray(audio, np.float32) * np.float32(scale))
  return np.clip(values, -32768, 32767).astype("<i2").tobytes()


def pcm16_to_audio(pcm: bytes, scale: float = PCM_SCALE) -> np.ndarray:
  return np.frombuffer(pcm, "<i2").astype(np.float32) / np.float32(scale)


def serialize_track(arrays: TrackArrays, meta: TrackMetadata,
                    jpeg_quality: int = JPEG_QUALITY) -> bytes:
  """One face track -> a serialized SequenceExample of schema :data:`SCHEMA_VERSION`."""
  import tensorflow as tf
  arrays.validate()
  has_audio = arrays.audio is not None and len(arrays.audio) > 0
  context = {
      "schema_version": _ints([SCHEMA_VERSION]),
      "video/id": _bytes([meta.video_id.encode()]),
      "video/path": _bytes([meta.video_path.encode()]),
      "video/fps": _floats([arrays.fps]),
      "video/width": _ints([meta.width]),
      "video/height": _ints([meta.height]),
      "track/index": _ints([meta.track_index]),
      "track/num_tracks": _ints([meta.num_tracks]),
      "track/name": _bytes([meta.track_name.encode()]),
      "dataset": _bytes([meta.dataset.encode()]),
      "split": _bytes([meta.split.encode()]),
      "label": _ints([meta.label]),
      "category": _bytes([meta.category.encode()]),
      "method": _bytes([meta.method.encode()]),
      "identity": _bytes([meta.identity.encode()]),
      "source_id": _bytes([meta.source_id.encode()]),
      "target_id": _bytes([meta.target_id.encode()]),
      "audio/has_audio": _ints([int(has_audio)]),
      "audio/sample_rate": _ints([constants.SAMPLE_RATE]),
      "audio/start_time": _floats([arrays.audio_start_time]),
      "audio/pcm_s16le": _bytes([audio_to_pcm16(arrays.audio, arrays.audio_pcm_scale)
                                 if has_audio else b""]),
      "audio/pcm_scale": _floats([arrays.audio_pcm_scale]),
      "audio/codec": _bytes([arrays.audio_codec.encode() if has_audio else b""]),
      "audio/frame_size": _ints([arrays.audio_frame_size if has_audio else 0]),
      "audio/tail_pcm_s16le": _bytes([audio_to_pcm16(arrays.audio_tail, arrays.audio_pcm_scale)
                                      if has_audio and arrays.audio_tail is not None
                                      else b""]),
  }

  def feature_list(features):
    return tf.train.FeatureList(feature=list(features))

  lists = {
      "image/encoded": feature_list(_bytes([encode_jpeg(f, jpeg_quality)])
                                    for f in arrays.frames_224),
      "image_112/encoded": feature_list(
          _bytes([encode_jpeg(f, jpeg_quality)]) for f in arrays.frames_112)
      if arrays.frames_112 is not None else feature_list([]),
      "frame/timestamp": feature_list(_floats([t]) for t in arrays.timestamps),
      "frame/detected": feature_list(_ints([d]) for d in arrays.detected),
      "frame/landmarks": feature_list(
          _bytes([np.asarray(p, "<f2").tobytes()]) for p in arrays.landmarks)
      if arrays.landmarks is not None else feature_list([]),
      "frame/transform": _transform_list(arrays.transforms),
      "frame/transform_112": _transform_list(arrays.transforms_112),
  }
  example = tf.train.SequenceExample(context=tf.train.Features(feature=context),
                                     feature_lists=tf.train.FeatureLists(feature_list=lists))
  return example.SerializeToString()


def _transform_list(transforms):
  import tensorflow as tf
  if transforms is None:
    return tf.train.FeatureList(feature=[])
  return tf.train.FeatureList(feature=[_floats(np.asarray(m, np.float32).reshape(6))
                                       for m in transforms])


def _context_spec():
  import tensorflow as tf
  string, i64, f32 = tf.string, tf.int64, tf.float32
  spec = {k: tf.io.FixedLenFeature([], string, default_value="") for k in (
      "video/id", "video/path", "dataset", "split", "category", "method", "identity",
      "source_id", "target_id", "audio/pcm_s16le", "track/name", "audio/codec",
      "audio/tail_pcm_s16le")}
  spec.update({k: tf.io.FixedLenFeature([], i64, default_value=0) for k in (
      "video/width", "video/height", "track/index", "track/num_tracks", "label",
      "audio/has_audio", "audio/sample_rate", "audio/frame_size")})
  spec["schema_version"] = tf.io.FixedLenFeature([], i64, default_value=-1)
  spec["video/fps"] = tf.io.FixedLenFeature([], f32, default_value=0.0)
  spec["audio/start_time"] = tf.io.FixedLenFeature([], f32, default_value=0.0)
  spec["audio/pcm_scale"] = tf.io.FixedLenFeature([], f32, default_value=PCM_SCALE)
  return spec


def _sequence_spec():
  import tensorflow as tf
  return {
      "image/encoded": tf.io.FixedLenSequenceFeature([], tf.string),
      "image_112/encoded": tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
      "frame/timestamp": tf.io.FixedLenSequenceFeature([], tf.float32),
      "frame/detected": tf.io.FixedLenSequenceFeature([], tf.int64),
      "frame/landmarks": tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
      "frame/transform": tf.io.FixedLenSequenceFeature([6], tf.float32, allow_missing=True),
      "frame/transform_112": tf.io.FixedLenSequenceFeature([6], tf.float32,
                                                           allow_missing=True),
  }


def parse_track(serialized, check_version: bool = True):
  """tf graph function: serialized record -> dict of tensors (frames stay JPEG-encoded).

  The caller decodes only the frames it samples (`decode_frames`), which is what keeps the input
  pipeline fast. Raises (at run time) an InvalidArgumentError naming both versions when the
  record's schema version is not in :data:`READABLE_VERSIONS`. ``audio/tail`` is the v2 tail
  (empty for v1 records).
  """
  import tensorflow as tf
  context, sequence = tf.io.parse_single_sequence_example(
      serialized, context_features=_context_spec(), sequence_features=_sequence_spec())
  if check_version:
    version = context["schema_version"]
    message = tf.strings.format(
        "record schema version {} (video {}) but this reader reads versions " +
        " and ".join(map(str, READABLE_VERSIONS)) +
        "; re-run `python -m data.prepare` with this version of the code",
        (version, context["video/id"]))
    readable = tf.reduce_any(tf.equal(version, list(READABLE_VERSIONS)))
    with tf.control_dependencies([tf.debugging.Assert(readable, [message])]):
      context = {k: tf.identity(v) for k, v in context.items()}
  pcm = lambda key: tf.cast(tf.io.decode_raw(context.pop(key), tf.int16, little_endian=True),
                            tf.float32) / context["audio/pcm_scale"]
  audio, tail = pcm("audio/pcm_s16le"), pcm("audio/tail_pcm_s16le")
  return {**context, **sequence, "audio": audio, "audio/tail": tail}


def decode_frames(encoded, indices=None, channels: int = 3):
  """Decodes the JPEG frames at `indices` (all when None) into uint8 [n, H, W, 3]."""
  import tensorflow as tf
  if indices is not None:
    encoded = tf.gather(encoded, indices)
  return tf.map_fn(lambda s: tf.io.decode_jpeg(s, channels=channels), encoded,
                   fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8))


def decode_landmarks(encoded):
  import tensorflow as tf
  points = tf.io.decode_raw(encoded, tf.float16, little_endian=True)
  return tf.reshape(tf.cast(points, tf.float32), [-1, NUM_LANDMARKS, LANDMARK_DIMS])


# ----------------------------------------------------------------------------------------------
# Shards on disk


def shard_name(prefix: str, index: int, count: int) -> str:
  return f"{prefix}-{index:05d}-of-{count:05d}.tfrecord"


class ShardWriter:
  """Writes one shard atomically and verified.

  Records go to ``<name>.<pid>-<random>.partial`` (a name no other run can share); on success
  the file is read back (every record's checksum, the count) and only then renamed into place.
  A crashed run therefore never leaves a shard that looks complete; ``data.prepare`` keeps the
  finished shards, redoes the others and removes stale ``*.partial`` files. After the ``with``
  block, ``count``, ``size`` and ``sha256`` describe the written shard (for the journal).
  """

  def __init__(self, path: str | pathlib.Path):
    import tensorflow as tf
    self.path = pathlib.Path(path)
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self._partial = self.path.with_name(
        f"{self.path.name}.{os.getpid()}-{secrets.token_hex(4)}{PARTIAL_SUFFIX}")
    self._writer = tf.io.TFRecordWriter(str(self._partial))
    self.count = 0
    self.size = 0
    self.sha256 = ""

  def write(self, record: bytes) -> None:
    self._writer.write(record)
    self.count += 1

  def __enter__(self) -> "ShardWriter":
    return self

  def __exit__(self, exc_type, exc, tb) -> None:
    self._writer.close()
    if exc_type is not None:
      self._partial.unlink(missing_ok=True)
      return
    try:
      readable = count_records(self._partial)
      if readable != self.count:
        raise RecordError(f"{self._partial}: {self.count} records written but {readable} read"
                          " back; the shard is not kept")
      self.size, self.sha256 = self._partial.stat().st_size, file_sha256(self._partial)
      os.replace(self._partial, self.path)
    except BaseException:
      self._partial.unlink(missing_ok=True)
      raise


def count_records(path: str | pathlib.Path) -> int:
  """Records in a shard, each checksum verified; RecordError names the first unreadable one."""
  import tensorflow as tf
  count = 0
  try:
    for _ in tf.data.TFRecordDataset(str(path)):
      count += 1
  except tf.errors.OpError as e:
    raise RecordError(f"{path}: record {count} is unreadable (corrupt or truncated: "
                      f"{_tf_reason(e)})") from None
  return count


def _tf_reason(error, limit: int = 80) -> str:
  """TensorFlow's reason for a read error, without the graph node and op names around it: the
  message must stay one short line that still ends with what to do."""
  text = (error.message or type(error).__name__).splitlines()[0]
  text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
  text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text).strip()
  return text[:limit] + (" ..." if len(text) > limit else "")


def file_sha256(path: str | pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def list_shards(patterns: str | Sequence[str]) -> list[str]:
  """Expands shard paths / globs / directories into a sorted list of finished shard files."""
  import glob
  if isinstance(patterns, (str, pathlib.Path)):
    patterns = [str(patterns)]
  files = []
  for pattern in patterns:
    path = pathlib.Path(pattern)
    if path.is_dir():
      files += sorted(str(p) for p in path.glob("*.tfrecord"))
    else:
      files += sorted(glob.glob(str(pattern)))
  if not files:
    raise FileNotFoundError(f"no TFRecord shards match {list(patterns)}")
  return files


# ----------------------------------------------------------------------------------------------
# The one reader path: which records of a record set can be read, honouring skip_corrupt_records


@dataclasses.dataclass(frozen=True)
class ShardCheck:
  """One shard read through once: `readable` records before the first unreadable byte."""
  path: str
  readable: int
  problem: Optional[str] = None      # names the file and the record; None when sound
  expected: Optional[int] = None     # the record count data.prepare journaled, when known

  @property
  def skipped(self) -> int:
    """Records lost to the problem: exact with a journal, else at least the unreadable one."""
    if self.problem is None:
      return 0
    if self.expected is not None:
      return max(self.expected - self.readable, 0)
    return 1


@dataclasses.dataclass(frozen=True)
class ReadableRecords:
  """What a pass over a record set reads: per shard, its first `counts[i]` records."""
  files: tuple
  counts: tuple
  skipped: tuple  # ShardChecks with a problem (empty unless skip_corrupt)

  @property
  def records_skipped(self) -> int:
    return sum(c.skipped for c in self.skipped)

  def report(self) -> dict:
    """For logs, metrics and summaries."""
    return {"records_skipped": self.records_skipped,
            "corrupt_shards": [c.problem for c in self.skipped]}

  def dataset(self, order: Optional[Sequence[int]] = None, cycle_length: int = 1):
    """Serialized records: shards in `order`, interleaved `cycle_length` at a time."""
    import tensorflow as tf
    order = range(len(self.files)) if order is None else order
    files = [self.files[i] for i in order]
    counts = [self.counts[i] for i in order]
    if not files:
      return tf.data.Dataset.from_tensor_slices(tf.constant([], tf.string))
    pairs = tf.data.Dataset.from_tensor_slices((files, tf.constant(counts, tf.int64)))
    return pairs.interleave(lambda f, n: tf.data.TFRecordDataset(f).take(n),
                            cycle_length=max(1, min(cycle_length, len(files))), block_length=1)


_CHECKS: dict = {}


def check_shard(path: str) -> ShardCheck:
  """Reads a shard once (every checksum); cached per process by path, size and mtime."""
  import tensorflow as tf
  stat = tf.io.gfile.stat(str(path))
  key = (str(path), int(stat.length), int(stat.mtime_nsec))
  if key not in _CHECKS:
    count, problem = 0, None
    try:
      for _ in tf.data.TFRecordDataset(str(path)):
        count += 1
    except tf.errors.OpError as e:
      problem = (f"{path}: record {count} is unreadable ({count} records before it read fine; "
                 f"{_tf_reason(e)})")
    _CHECKS[key] = ShardCheck(str(path), count, problem, journaled_count(path))
  return _CHECKS[key]


def journaled_count(path: str | pathlib.Path) -> Optional[int]:
  """The record count data.prepare's journal (``.shards.jsonl`` beside the shard) gives."""
  import json
  path = pathlib.Path(path)
  journal = path.parent / ".shards.jsonl"
  count = None
  if journal.is_file():
    for line in journal.read_text().splitlines():
      try:
        entry = json.loads(line)
      except json.JSONDecodeError:
        continue
      if (isinstance(entry, dict) and entry.get("status") == "ok" and "records" in entry
              and pathlib.Path(str(entry.get("path", ""))).name == path.name):
        count = int(entry["records"])
  return count


def readable_records(files: Sequence[str], *, skip_corrupt: bool,
                     what: str = "records") -> ReadableRecords:
  """Checks every shard once; corrupt ones raise RecordError, or with `skip_corrupt` are read
  up to their first unreadable record (logged as warnings, counted in the result's report).

  Every pass over records (label counting, training, validation, evaluation) of both detectors
  goes through here, so a corrupt shard gets the same answer everywhere.
  """
  checks = [check_shard(f) for f in files]
  bad = [c for c in checks if c.problem]
  if bad and not skip_corrupt:
    more = f" (and {len(bad) - 1} more corrupt shard(s))" if len(bad) > 1 else ""
    raise RecordError(f"{what}: {bad[0].problem}{more}; re-run data.prepare for it, or set "
                      "skip_corrupt_records=True to skip (and count) the unreadable records")
  for check in bad:
    log.warning("%s: skipping %s%d record(s): %s", what,
                "" if check.expected is not None else "at least ", check.skipped, check.problem)
  return ReadableRecords(tuple(c.path for c in checks), tuple(c.readable for c in checks),
                         tuple(bad))


def validate_shards(files: Sequence[str]) -> list[str]:
  """Reads every record of every shard; returns one message per problem (empty when sound).

  Used to name the file and record index behind a DataLossError seen during training.
  """
  import tensorflow as tf
  problems = []
  for path in files:
    index = -1
    try:
      for index, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
        version = tf.train.SequenceExample.FromString(record).context.feature[
            "schema_version"].int64_list.value
        if len(version) != 1 or version[0] not in READABLE_VERSIONS:
          problems.append(f"{path}: record {index} has schema version "
                          f"{list(version) or 'none'}, expected one of {READABLE_VERSIONS}")
    except (tf.errors.DataLossError, tf.errors.OpError) as e:
      problems.append(f"{path}: corrupt or truncated after record {index} "
                      f"(record {index + 1} unreadable: {e.message.splitlines()[0]})")
  return problems


def read_tracks(files: str | Sequence[str]) -> Iterator[Mapping[str, np.ndarray]]:
  """Eagerly iterates parsed records as numpy dicts (tools, tests, evaluation of one video)."""
  import tensorflow as tf
  files = list_shards(files)
  dataset = tf.data.TFRecordDataset(files).map(parse_track)
  try:
    yield from dataset.as_numpy_iterator()
  except tf.errors.DataLossError as e:
    raise RecordError("; ".join(validate_shards(files)) or str(e)) from None
  except tf.errors.InvalidArgumentError as e:
    if "schema version" in e.message:
      raise SchemaVersionError(e.message.splitlines()[0]) from None
    raise
