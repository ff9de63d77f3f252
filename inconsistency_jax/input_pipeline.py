"""tf.data input pipelines of the inconsistency detector: face-track records -> window batches.

A *window* is ``window_seconds`` of one face track (``model.window_seconds``, W video frames at
29 fps): ``model.frames_per_window`` (F) 112x112 ArcFace-aligned faces taken at the centres of F
equal parts of the window, and the window's 16-kHz mono audio (A samples) for Whisper. The
records carry 44.1-kHz audio; each track's audio is resampled once with a polyphase filter
(:func:`resample_to_whisper`) and the windows are cut from it at their first frame's timestamp.

Training batches (one step, one host)::

  faces  uint8   [N_host, T, F, S, S, 3]   RGB, S = model.face_size (112; smaller only for CPU)
  audio  float32 [N_host, T, A]

are N_host *distinct identities* x T windows. Each identity contributes one of its tracks (drawn
at random) and T non-overlapping windows at random positions in it, each flipped horizontally
with probability ``flip_prob``. Why random access: every batch is a pure function of
(seed, step), so a run resumed at step k sees exactly the batches an uninterrupted run would
have seen, and distinctness of the N identities is guaranteed by construction (a streaming
shuffle cannot promise either). The records are located once by an index of byte offsets
(:func:`index_tracks`, cached in the workdir); each example is then read with one seek.

Who may enter training: identities in the exclusion file (a list of ids, or FakeAVCeleb's
``meta_data.csv`` / root: all its ids) are dropped from the index and never sampled; tracks
shorter than T windows or without audio are left out (counted in the log). A host that holds
fewer than N_host usable identities raises :class:`InputError` before the first step.

Multi-host: each host indexes the shard files ``process_index::process_count``. Identities that
straddle two hosts' files (adjacent shards) are given to one host only (:func:`owned_identities`,
an all-gather of identity hashes), so the N identities of the GLOBAL batch are distinct, which
the intra-modal loss needs: its negatives span all devices.

Scoring batches (:func:`score_dataset`): one track per example, its T windows placed exactly as
``scoring.plan_windows`` places them (linspace starts, fewer windows for short tracks, zero
padding and ``window_valid`` beyond them), with the track's metadata and its motion magnitude
(mean displacement of the 3-D landmarks between consecutive frames, for Fig. 4).
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import math
import pathlib
import threading
from typing import Callable, Iterator, Mapping, Optional, Sequence

import ml_collections
import numpy as np
import scipy.signal
import tensorflow as tf

from data import constants
from data import records
from inconsistency_jax import scoring

log = logging.getLogger(__name__)

# TFRecord framing: uint64 length, uint32 masked CRC of the length, data, uint32 CRC of the data.
_RECORD_HEADER_BYTES = 12
_RECORD_FOOTER_BYTES = 4
_INDEX_VERSION = 1
_RESAMPLE_GCD = math.gcd(constants.WHISPER_SAMPLE_RATE, constants.SAMPLE_RATE)


class InputError(ValueError):
  """Training data that cannot give the batches the config asks for; the message says why."""


def get_config() -> ml_collections.ConfigDict:
  """Input defaults; experiment configs override them (documented in configs/default.py)."""
  c = ml_collections.ConfigDict()
  c.num_windows = 4          # T of a training example (windows per identity)
  c.score_num_windows = 8    # T at scoring time (fewer for short tracks, flagged)
  c.flip_prob = 0.5          # horizontal flip, drawn per window
  c.require_audio = True     # training tracks need audio (the cross-modal loss)
  c.exclude_identities = ml_collections.config_dict.placeholder(str)
  c.prefetch = 2
  # A corrupt shard stops every pass (training index, validation, scoring) with an error naming
  # the file and record; True reads each shard up to its first unreadable record instead, and
  # the skipped records are counted in the log, metrics.jsonl and the evaluation summary.
  c.skip_corrupt_records = False
  return c


# ----------------------------------------------------------------------------------------------
# Windows


@dataclasses.dataclass(frozen=True)
class WindowSpec:
  """What one window holds, from the model config (window_seconds, frames_per_window)."""
  window_frames: int      # W: video frames spanned (at data.constants.FPS)
  frames_per_window: int  # F: faces fed to the identity / visual networks
  audio_samples: int      # A: 16-kHz samples fed to Whisper
  face_size: int          # S: face side in pixels (records hold 112)

  @classmethod
  def from_model_config(cls, model: ml_collections.ConfigDict) -> "WindowSpec":
    window_frames = int(round(model.window_seconds * constants.FPS))
    if window_frames < model.frames_per_window:
      raise ValueError(f"model.window_seconds={model.window_seconds} spans {window_frames} "
                       f"frames at {constants.FPS} fps, fewer than model.frames_per_window="
                       f"{model.frames_per_window}")
    return cls(window_frames=window_frames, frames_per_window=int(model.frames_per_window),
               audio_samples=int(round(model.window_seconds * constants.WHISPER_SAMPLE_RATE)),
               face_size=int(model.get("face_size", constants.IDENTITY_FACE_SIZE)))

  def frame_offsets(self) -> np.ndarray:
    """[F] frame offsets within a window: the centres of F equal parts of it."""
    return ((np.arange(self.frames_per_window) + 0.5) * self.window_frames /
            self.frames_per_window).astype(np.int32)


def resample_to_whisper(audio: np.ndarray) -> np.ndarray:
  """44.1-kHz mono float audio -> 16 kHz (polyphase, scipy's default Kaiser-windowed filter)."""
  audio = np.asarray(audio, np.float32)
  if audio.size == 0:
    return audio
  up = constants.WHISPER_SAMPLE_RATE // _RESAMPLE_GCD
  down = constants.SAMPLE_RATE // _RESAMPLE_GCD
  return scipy.signal.resample_poly(audio, up, down).astype(np.float32)


def _resample_tf(audio):
  out = tf.numpy_function(resample_to_whisper, [audio], tf.float32, stateful=False)
  return tf.ensure_shape(out, [None])


def _window_audio(audio_16k, start_seconds, num_samples: int):
  """[n, A] windows of a 16-kHz waveform starting at `start_seconds` [n]; zeros past the end."""
  starts = tf.cast(tf.round(start_seconds * constants.WHISPER_SAMPLE_RATE), tf.int32)
  indices = tf.maximum(starts, 0)[:, None] + tf.range(num_samples)[None, :]
  length = tf.shape(audio_16k)[0]
  # Index `length` is an appended zero: windows running past the end (or empty audio) read it.
  padded = tf.concat([audio_16k, tf.zeros([1], audio_16k.dtype)], axis=0)
  return tf.gather(padded, tf.minimum(indices, length))


def _window_faces(record, starts, valid, spec: WindowSpec, flips=None):
  """uint8 [n, F, S, S, 3] faces of the windows at `starts` (frame indices) [n]."""
  n = tf.shape(starts)[0]
  length = tf.shape(record["image_112/encoded"])[0]
  indices = starts[:, None] + tf.constant(spec.frame_offsets())[None, :]
  indices = tf.clip_by_value(tf.reshape(indices, [-1]), 0, tf.maximum(length - 1, 0))
  faces = records.decode_frames(record["image_112/encoded"], indices)
  size = constants.IDENTITY_FACE_SIZE
  faces = tf.ensure_shape(faces, [None, size, size, 3])
  if spec.face_size != size:
    faces = tf.image.resize(faces, (spec.face_size, spec.face_size), antialias=True)
    faces = tf.cast(tf.clip_by_value(tf.round(faces), 0, 255), tf.uint8)
  faces = tf.reshape(faces, [n, spec.frames_per_window, spec.face_size, spec.face_size, 3])
  if flips is not None:
    faces = tf.where(flips[:, None, None, None, None], tf.reverse(faces, axis=[3]), faces)
  keep = tf.reshape(tf.cast(valid, tf.uint8), [n, 1, 1, 1, 1])
  return faces * keep


def _window_start_seconds(record, starts):
  times = tf.gather(record["frame/timestamp"], tf.maximum(starts, 0))
  return tf.cast(times - record["audio/start_time"], tf.float32)


# ----------------------------------------------------------------------------------------------
# Index of the training records (byte offsets, identities, lengths)


@dataclasses.dataclass(frozen=True)
class TrackEntry:
  """Where one track record lives and what the sampler needs to know about it."""
  file: str
  offset: int       # byte offset of the record's TFRecord frame in `file`
  size: int         # bytes of the serialized record
  video_id: str
  track: int
  identity: str
  num_frames: int
  has_audio: bool
  label: int


def _index_spec():
  context = {
      "video/id": tf.io.FixedLenFeature([], tf.string, default_value=""),
      "identity": tf.io.FixedLenFeature([], tf.string, default_value=""),
      "track/index": tf.io.FixedLenFeature([], tf.int64, default_value=0),
      "audio/has_audio": tf.io.FixedLenFeature([], tf.int64, default_value=0),
      "label": tf.io.FixedLenFeature([], tf.int64, default_value=0),
      "schema_version": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
  }
  sequence = {
      "frame/timestamp": tf.io.FixedLenSequenceFeature([], tf.float32),
      "image_112/encoded": tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
  }
  return context, sequence


def _index_one(serialized):
  context_spec, sequence_spec = _index_spec()
  context, sequence = tf.io.parse_single_sequence_example(
      serialized, context_features=context_spec, sequence_features=sequence_spec)
  return {**context, "size": tf.strings.length(serialized, unit="BYTE"),
          "num_frames": tf.shape(sequence["frame/timestamp"])[0],
          "num_faces_112": tf.shape(sequence["image_112/encoded"])[0]}


def index_file(path: str, skip_corrupt: bool = False) -> list[TrackEntry]:
  """Every readable record of one shard: its byte offset (from the record sizes) and metadata.

  The shard is checked first (data.records.readable_records): a corrupt one raises RecordError
  naming file and record, or with `skip_corrupt` is indexed up to its first unreadable record.
  """
  entries, offset = [], 0
  readable = records.readable_records([path], skip_corrupt=skip_corrupt)
  dataset = readable.dataset().map(_index_one, num_parallel_calls=tf.data.AUTOTUNE)
  try:
    for position, row in enumerate(dataset.as_numpy_iterator()):
      if row["schema_version"] not in records.READABLE_VERSIONS:
        raise records.SchemaVersionError(
            f"{path}: record {position} has schema version {row['schema_version']}, this code "
            f"reads {records.READABLE_VERSIONS}; re-run python -m data.prepare")
      if row["num_faces_112"] != row["num_frames"]:
        raise InputError(f"{path}: record {position} (video {row['video/id'].decode()}) holds "
                         f"{row['num_faces_112']} 112x112 faces for {row['num_frames']} frames; "
                         "the inconsistency detector needs image_112/encoded on every frame")
      size = int(row["size"])
      entries.append(TrackEntry(
          file=str(path), offset=offset, size=size, video_id=row["video/id"].decode(),
          track=int(row["track/index"]), identity=row["identity"].decode(),
          num_frames=int(row["num_frames"]), has_audio=bool(row["audio/has_audio"]),
          label=int(row["label"])))
      offset += _RECORD_HEADER_BYTES + size + _RECORD_FOOTER_BYTES
  except tf.errors.DataLossError:
    problems = records.validate_shards([path])
    raise records.RecordError("; ".join(problems) or f"{path} is corrupt") from None
  return entries


def index_tracks(files: Sequence[str], cache_dir: Optional[str] = None,
                 skip_corrupt: bool = False) -> list[TrackEntry]:
  """:func:`index_file` over shards, with an optional JSON cache per shard (keyed by its path,
  size and modification time) so that a resumed run does not read the data twice."""
  out = []
  for path in files:
    cache = _cache_path(path, cache_dir) if cache_dir else None
    stamp = _file_stamp(path)
    if cache is not None and cache.is_file() and not skip_corrupt:
      cached = json.loads(cache.read_text())
      if cached.get("stamp") == stamp and cached.get("version") == _INDEX_VERSION:
        out += [TrackEntry(**e) for e in cached["entries"]]
        continue
    entries = index_file(path, skip_corrupt=skip_corrupt)
    if cache is not None:
      cache.parent.mkdir(parents=True, exist_ok=True)
      partial = cache.with_suffix(".partial")
      partial.write_text(json.dumps({"version": _INDEX_VERSION, "stamp": stamp, "entries": [
          dataclasses.asdict(e) for e in entries]}))
      partial.replace(cache)
    out += entries
  return out


def _file_stamp(path: str) -> list:
  stat = tf.io.gfile.stat(path)
  return [str(path), int(stat.length), int(stat.mtime_nsec)]


def _cache_path(path: str, cache_dir: str) -> pathlib.Path:
  digest = hashlib.sha1(str(path).encode()).hexdigest()[:16]
  return pathlib.Path(cache_dir) / f"{pathlib.Path(path).name}.{digest}.json"


def read_exclusions(path: str) -> set[str]:
  """Identities never to train on: a list file (one id a line), or FakeAVCeleb's
  ``meta_data.csv`` (or its root folder), whose source and target ids are all excluded."""
  from data.datasets import base as datasets_base
  from data.datasets import fakeavceleb
  from data.datasets import voxceleb2
  p = pathlib.Path(path).expanduser()
  if p.is_dir() or p.name == fakeavceleb.META_FILE:
    return voxceleb2.fakeavceleb_identities(p)
  return set(datasets_base.read_id_list(p, "excluded identity"))


def _identity_hash(identity: str) -> int:
  return int.from_bytes(hashlib.blake2b(identity.encode(), digest_size=7).digest(), "little")


def owned_identities(identities: Sequence[str], host_index: int,
                     gather: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> set[str]:
  """The identities this host keeps when several hosts hold tracks of the same identity.

  ``gather`` all-gathers an int64 array [k] from every host into [hosts, k] (default: JAX's
  multihost_utils.process_allgather; a single process needs none). An identity belongs to the
  lowest-numbered host that holds it.
  """
  identities = sorted(set(identities))
  if gather is None:
    import jax
    if jax.process_count() == 1:
      return set(identities)
    from jax.experimental import multihost_utils
    gather = lambda x: np.asarray(multihost_utils.process_allgather(x))
  hashes = np.array([_identity_hash(i) for i in identities], np.int64)
  longest = int(np.max(gather(np.array([len(hashes)], np.int64))))
  padded = np.full([max(longest, 1)], -1, np.int64)
  padded[:len(hashes)] = hashes
  everyone = gather(padded)
  earlier = set(everyone[:host_index].ravel().tolist()) - {-1}
  return {i for i, h in zip(identities, hashes) if int(h) not in earlier}


# ----------------------------------------------------------------------------------------------
# Training


@dataclasses.dataclass(frozen=True)
class ExamplePlan:
  """One identity of one batch: which record, which windows, which flips."""
  entry: TrackEntry
  starts: np.ndarray  # [T] first frame of every window
  flips: np.ndarray   # [T] bool


class TrainSampler:
  """Batches of N distinct identities x T windows as a pure function of (seed, step).

  An epoch visits every identity once, in an order drawn from (seed, host, epoch); step k of the
  epoch takes the identities k*N .. k*N+N-1 of that order, a track of each and T windows in it,
  drawn from (seed, host, step, slot).
  """

  def __init__(self, entries: Sequence[TrackEntry], spec: WindowSpec, *, identities_per_batch: int,
               num_windows: int, seed: int, host_index: int = 0, flip_prob: float = 0.5,
               require_audio: bool = True, excluded: Optional[set[str]] = None,
               where: str = "the training records"):
    self.spec, self.n, self.t = spec, int(identities_per_batch), int(num_windows)
    self.seed, self.host, self.flip_prob = int(seed), int(host_index), float(flip_prob)
    if self.n < 1 or self.t < scoring.MIN_WINDOWS:
      raise InputError(f"need at least 1 identity and {scoring.MIN_WINDOWS} windows per batch, "
                       f"got N={self.n}, T={self.t}")
    excluded = excluded or set()
    min_frames = self.t * spec.window_frames
    dropped = collections.Counter()
    by_identity: dict[str, list[TrackEntry]] = collections.defaultdict(list)
    for entry in entries:
      if entry.identity in excluded:
        dropped["excluded identity"] += 1
      elif not entry.identity:
        dropped["no identity"] += 1
      elif entry.label != constants.REAL:
        dropped["fake"] += 1
      elif require_audio and not entry.has_audio:
        dropped["no audio"] += 1
      elif entry.num_frames < min_frames:
        dropped[f"shorter than T x W = {min_frames} frames"] += 1
      else:
        by_identity[entry.identity].append(entry)
    self.identities = sorted(by_identity)
    self.tracks = [by_identity[i] for i in self.identities]
    self.dropped = dict(dropped)
    log.info("%s: %d usable tracks of %d identities; left out: %s", where,
             sum(map(len, self.tracks)), len(self.identities), self.dropped or "none")
    if len(self.identities) < self.n:
      raise InputError(
          f"{where} hold {len(self.identities)} identities with a usable track (real, with "
          f"audio, at least T x W = {self.t} x {spec.window_frames} = {min_frames} frames, not "
          f"excluded; left out: {self.dropped or 'none'}), but a batch needs "
          f"{self.n} distinct identities on this host. Lower train.identities_per_batch or "
          "input.num_windows, or prepare more identities.")
    self.steps_per_epoch = len(self.identities) // self.n

  def plan(self, step: int) -> list[ExamplePlan]:
    epoch, k = divmod(int(step), self.steps_per_epoch)
    order = np.random.default_rng([self.seed, self.host, epoch]).permutation(
        len(self.identities))
    out = []
    for slot, identity in enumerate(order[k * self.n:(k + 1) * self.n]):
      rng = np.random.default_rng([self.seed, self.host, epoch, k, slot, 1])
      candidates = self.tracks[identity]
      entry = candidates[int(rng.integers(len(candidates)))]
      w = self.spec.window_frames
      fit = entry.num_frames // w
      chosen = np.sort(rng.choice(fit, self.t, replace=False))
      offset = int(rng.integers(entry.num_frames - fit * w + 1))
      out.append(ExamplePlan(entry=entry, starts=(offset + chosen * w).astype(np.int32),
                             flips=rng.random(self.t) < self.flip_prob))
    return out


_HANDLES = threading.local()


def read_record(path, offset, size) -> bytes:
  """The serialized record at byte `offset` of a shard (local or gs://, via tf.io.gfile)."""
  path = path.decode() if isinstance(path, bytes) else str(path)
  handles = getattr(_HANDLES, "files", None)
  if handles is None:
    handles = _HANDLES.files = collections.OrderedDict()
  handle = handles.pop(path, None) or tf.io.gfile.GFile(path, "rb")
  handles[path] = handle
  while len(handles) > 16:
    handles.popitem(last=False)[1].close()
  handle.seek(int(offset) + _RECORD_HEADER_BYTES)
  data = handle.read(int(size))
  if len(data) != int(size):
    raise records.RecordError(f"{path}: record at byte {offset} is truncated ({len(data)} of "
                              f"{size} bytes); the shard changed since it was indexed")
  return data


def _train_example(plan, spec: WindowSpec):
  serialized = tf.numpy_function(read_record, [plan["file"], plan["offset"], plan["size"]],
                                 tf.string, stateful=False)
  record = records.parse_track(tf.reshape(serialized, []))
  starts = plan["starts"]
  valid = tf.ones_like(starts, tf.bool)
  faces = _window_faces(record, starts, valid, spec, flips=plan["flips"])
  audio = _window_audio(_resample_tf(record["audio"]), _window_start_seconds(record, starts),
                        spec.audio_samples)
  return {"faces": faces, "audio": audio}


def train_dataset(sampler: TrainSampler, *, start_step: int, num_steps: int,
                  prefetch: int = 2) -> tf.data.Dataset:
  """Batches of steps start_step .. num_steps - 1: faces [N, T, F, S, S, 3], audio [N, T, A]."""
  t = sampler.t

  def plans() -> Iterator[dict]:
    for step in range(start_step, num_steps):
      for p in sampler.plan(step):
        yield {"file": p.entry.file, "offset": p.entry.offset, "size": p.entry.size,
               "starts": p.starts, "flips": p.flips}

  signature = {"file": tf.TensorSpec([], tf.string), "offset": tf.TensorSpec([], tf.int64),
               "size": tf.TensorSpec([], tf.int64), "starts": tf.TensorSpec([t], tf.int32),
               "flips": tf.TensorSpec([t], tf.bool)}
  ds = tf.data.Dataset.from_generator(plans, output_signature=signature)
  ds = ds.map(lambda p: _train_example(p, sampler.spec), num_parallel_calls=tf.data.AUTOTUNE,
              deterministic=True)
  return ds.batch(sampler.n, drop_remainder=True).prefetch(prefetch)


# ----------------------------------------------------------------------------------------------
# Scoring


def plan_starts_tf(num_frames, window_frames: int, num_windows: int):
  """tf twin of scoring.plan_windows: (starts [T] padded with 0, count) with count = 0 when the
  track holds fewer than MIN_WINDOWS windows."""
  fit = num_frames // window_frames
  count = tf.minimum(num_windows, fit)
  count = tf.where(count >= scoring.MIN_WINDOWS, count, 0)
  stop = tf.cast(tf.maximum(num_frames - window_frames, 0), tf.float64)
  starts = tf.cast(tf.round(tf.linspace(tf.constant(0.0, tf.float64), stop,
                                        tf.maximum(count, 1))), tf.int32)
  starts = tf.pad(starts, [[0, num_windows - tf.shape(starts)[0]]])
  valid = tf.range(num_windows) < count
  return tf.where(valid, starts, 0), count


def motion_magnitude(landmarks):
  """Mean |landmark(t+1) - landmark(t)| (224-px units, 3-D) over points and frames; NaN if n/a."""
  diffs = tf.norm(landmarks[1:] - landmarks[:-1], axis=-1)
  return tf.cond(tf.shape(landmarks)[0] > 1, lambda: tf.reduce_mean(diffs),
                 lambda: tf.constant(float("nan")))


def score_example(record, spec: WindowSpec, num_windows: int):
  """One track, windowed for scoring: faces [T, F, S, S, 3], audio [T, A] and metadata."""
  num_frames = tf.shape(record["frame/timestamp"])[0]
  starts, count = plan_starts_tf(num_frames, spec.window_frames, num_windows)
  valid = tf.range(num_windows) < count
  has_audio = tf.logical_and(record["audio/has_audio"] > 0, tf.size(record["audio"]) > 0)
  audio = tf.cond(
      has_audio,
      lambda: _window_audio(_resample_tf(record["audio"]), _window_start_seconds(record, starts),
                            spec.audio_samples),
      lambda: tf.zeros([num_windows, spec.audio_samples]))
  audio = audio * tf.cast(valid, tf.float32)[:, None]
  landmarks = records.decode_landmarks(record["frame/landmarks"])
  return {
      "faces": _window_faces(record, starts, valid, spec),
      "audio": tf.ensure_shape(audio, [num_windows, spec.audio_samples]),
      "window_valid": valid, "starts": starts, "num_windows": count,
      "num_frames": num_frames, "has_audio": has_audio,
      "motion": motion_magnitude(landmarks),
      "label": tf.cast(record["label"], tf.int32),
      "track": tf.cast(record["track/index"], tf.int32),
      **{key.replace("video/id", "video_id"): record[key] for key in (
          "video/id", "dataset", "split", "category", "method", "identity")},
  }


def score_dataset(source, spec: WindowSpec, *, num_windows: int, batch_size: int,
                  host_index: int = 0, host_count: int = 1,
                  skip_corrupt: bool = False) -> tf.data.Dataset:
  """Every track once, in fixed-size batches; the last one padded (``mask`` 0).

  ``source``: shard files (each host reads ``host_index::host_count`` of them) or a list of
  serialized records (single-video commands; not split over hosts). A corrupt shard raises
  RecordError naming file and record, or with `skip_corrupt` is read up to the corrupt record.
  """
  if isinstance(source, (list, tuple)) and source and isinstance(source[0], bytes):
    ds = tf.data.Dataset.from_tensor_slices(list(source))
  else:
    files = sorted(records.list_shards(source))
    if len(files) < host_count:
      raise InputError(f"{len(files)} shard files cannot be split over {host_count} hosts")
    ds = records.readable_records(files[host_index::host_count],
                                  skip_corrupt=skip_corrupt).dataset()
  ds = ds.map(lambda r: {**score_example(records.parse_track(r), spec, num_windows),
                         "mask": tf.constant(True)},
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.batch(batch_size).map(lambda b: _pad_batch(b, batch_size)).prefetch(2)


def _pad_batch(batch, batch_size: int):
  def pad(x):
    missing = batch_size - tf.shape(x)[0]
    return tf.pad(x, [[0, missing]] + [[0, 0]] * (len(x.shape) - 1))
  return tf.nest.map_structure(pad, batch)


def shard_for_devices(batch: Mapping[str, np.ndarray], num_devices: int) -> dict:
  """numpy [B, ...] -> [num_devices, B // num_devices, ...] for pmap."""
  def reshape(x):
    x = np.asarray(x)
    if x.shape[0] % num_devices:
      raise InputError(f"a batch of {x.shape[0]} does not split over {num_devices} devices")
    return x.reshape((num_devices, x.shape[0] // num_devices) + x.shape[1:])
  return {k: reshape(v) for k, v in batch.items()}
