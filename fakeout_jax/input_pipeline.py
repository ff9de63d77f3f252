"""tf.data input pipelines of FakeOut, from face-track TFRecords (data.records) to device batches.

What the released FakeOut code does, and this pipeline reproduces by default:

* A clip is 32 frames taken with stride 2 (it spans 64 frames, 2.2 s at 29 fps). Evaluation takes
  ``eval_num_clips`` clips per track at offsets ``linspace(0, len - 32 * 2, N)``; a track shorter
  than a clip is looped.
* Frames are float32 in [0, 1]; no mean/std normalisation.
* Audio: one window is ``int(44100 / 29 * 32) = 48662`` samples (the span of 32 frames, half the
  clip's span: a quirk of the original kept as is). Log-mel: STFT 2048 / 256 without end padding
  (183 frames), power through TensorFlow's 80-bin mel matrix (0-22050 Hz), dB relative to the
  maximum over the whole tensor given, floored 80 dB below that maximum. In evaluation the tensor
  is all N windows of a track together, and the audio windows are placed with their own
  ``linspace`` over the audio (stride 1), NOT aligned with the video clips
  (``eval_audio_alignment='released'``); ``'aligned'`` cuts each audio window at its clip's start.
  The audio the released windows are placed over is the wav ``ffmpeg -ac 2 -f wav`` writes for
  the track file: for AAC, whole 1024-sample codec frames (the track's samples, then the
  decoded tail of its last frame, which v2 records carry), so a 6.0 s track spans 265216
  samples, not 264600 (:func:`released_audio`).
* Multi-face tracks: the released test builder looks a track's wav up under the video's name
  with ``@partN`` cut off, while its data preparation names each wav after the track file, so
  every ``@partN`` track is scored with the silent dummy audio. ``multi_face_audio='released'``
  (default) reproduces that; ``'own'`` gives every track its video's audio.
  ``eval_audio_shift_seconds`` moves every evaluation audio window by a fixed time, wrapping
  around the track's audio (the audio-shift study of the paper's Fig. 13).
* A track without audio gets an all-zero spectrogram (the released "dummy audio": zeros in, zeros
  out of the dB conversion).
* Training augmentation, video only, each with probability 1/2 and one draw per clip: horizontal
  flip, brightness (max delta 32/255), hue (max delta 0.2). It runs on the device inside the
  jitted train step (fakeout_jax.augment; ``augment_on='device'``, default): training batches
  carry uint8 frames (4x fewer bytes to the device than float32) and an ``augment_seed`` per
  example. ``augment_on='host'`` keeps the former tf.data version (float32 frames, augmented
  here), for comparison. Evaluation batches are float32 in [0, 1], as before.

Where the paper and the code differ for training (the training code was never released), this
follows the paper: clips start at a random frame (``train_clip_start='random'``; ``'start'``
reproduces the code's always-first-frame sampler) and the audio window starts at the clip's
start time.

Determinism: every random draw is a stateless function of (seed, epoch, example index), so a
pipeline restarted at step k with ``start_index`` reproduces exactly the batches an uninterrupted
run would have seen. Multi-host: each host reads the shard files ``process_index::process_count``.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Iterator, Optional, Sequence

import ml_collections
import numpy as np
import tensorflow as tf

from data import constants, records

log = logging.getLogger(__name__)

# Audio codecs whose ffmpeg-decoded wav holds whole codec frames (the end padding of the last
# frame is kept; measured with FFmpeg 5.1 by tools/make_fakeout_release_fixtures.py).
WHOLE_FRAME_CODECS = ("aac",)
# The released code's audio window: the samples spanned by 32 frames at 29 fps.
AUDIO_WINDOW = int(constants.SAMPLE_RATE / constants.FPS * 32)
STFT_LENGTH, STFT_STEP = 2048, 256
TOP_DB = 80.0
AMIN = 1e-16


def get_config() -> ml_collections.ConfigDict:
  """Input-pipeline defaults (the released FakeOut values); experiment configs override them."""
  c = ml_collections.ConfigDict()
  c.num_frames = 32
  c.frame_stride = 2
  c.image_size = constants.FACE_SIZE   # records hold 224x224; smaller sizes resize (CPU demos)
  c.audio_window = AUDIO_WINDOW
  c.num_mel_bins = 80
  c.use_audio = True
  c.train_clip_start = "random"        # 'random' (paper) | 'start' (released code)
  c.eval_num_clips = 5
  c.eval_audio_alignment = "released"  # 'released' (own linspace) | 'aligned' (clip start)
  # 'released': @partN tracks (multi-face videos) get the silent spectrogram, as in the released
  # evaluation behind the published numbers; 'own': every track gets its video's audio.
  c.multi_face_audio = "released"
  # Fig. 13: shift every evaluation audio window by this many seconds (positive: the audio
  # comes from later in the track than its video), circularly within the track's audio.
  c.eval_audio_shift_seconds = 0.0
  c.augment = True
  # 'device': training frames go to the device as uint8 and are augmented in the train step
  # (fakeout_jax.augment); 'host': float32 frames augmented here in tf.data (the former path).
  c.augment_on = "device"
  c.flip_prob = 0.5
  c.brightness_prob = 0.5
  c.brightness_max_delta = 32 / 255
  c.hue_prob = 0.5
  c.hue_max_delta = 0.2
  c.oversample = "balance"             # 'balance' the two classes | 'none'
  # Records are whole tracks (megabytes): a small buffer over interleaved files mixes them.
  c.shuffle_buffer = 16
  c.interleave_files = 8
  c.skip_corrupt_records = False
  return c


# ----------------------------------------------------------------------------------------------
# Audio front end


def mel_matrix(num_mel_bins: int = 80) -> tf.Tensor:
  return tf.signal.linear_to_mel_weight_matrix(
      num_mel_bins=num_mel_bins, num_spectrogram_bins=STFT_LENGTH // 2 + 1,
      sample_rate=constants.SAMPLE_RATE, lower_edge_hertz=0.0,
      upper_edge_hertz=constants.SAMPLE_RATE / 2)


def log_mel_spectrogram(audio: tf.Tensor, num_mel_bins: int = 80) -> tf.Tensor:
  """[..., samples] waveform -> [..., frames, mel] dB, referenced to the max of the WHOLE input.

  48662 samples give 183 frames. Matches the released code's power_to_db: 10 log10(max(amin, x))
  minus 10 log10(max(amin, max(x))), floored at (max - 80 dB).
  """
  stft = tf.signal.stft(tf.cast(audio, tf.float32), frame_length=STFT_LENGTH,
                        frame_step=STFT_STEP, pad_end=False)
  power = tf.matmul(tf.square(tf.abs(stft)), mel_matrix(num_mel_bins))
  log10 = lambda x: tf.math.log(x) / tf.math.log(tf.constant(10.0, x.dtype))
  db = 10.0 * log10(tf.maximum(AMIN, power)) - 10.0 * log10(
      tf.maximum(AMIN, tf.reduce_max(power)))
  return tf.maximum(db, tf.reduce_max(db) - TOP_DB)


def num_spectrogram_frames(window: int = AUDIO_WINDOW) -> int:
  return 1 + (window - STFT_LENGTH) // STFT_STEP


# ----------------------------------------------------------------------------------------------
# Sampling


def looped_indices(length, starts, count: int, stride: int):
  """[..., count] indices start, start + stride, ... for each of `starts`, looping a sequence of
  `length` that is too short (as the released sampler does)."""
  steps = tf.range(count) * stride
  return tf.math.floormod(tf.expand_dims(starts, -1) + steps, tf.maximum(length, 1))


def linspace_starts(length, window_span: int, num: int):
  """The released sampler's start offsets: linspace(0, max(0, length - span), num), truncated."""
  max_offset = tf.maximum(0, length - window_span)
  return tf.cast(tf.linspace(0.0, tf.cast(max_offset, tf.float32), num), tf.int32)


def _audio_windows(audio, starts, window: int):
  """[num, window] samples at `starts`, looping the waveform when it is too short."""
  return tf.gather(audio, looped_indices(tf.shape(audio)[0], starts, window, 1))


def _frames_to_float(frames, image_size: int):
  frames = tf.image.convert_image_dtype(frames, tf.float32)  # uint8 -> [0, 1]
  if image_size != constants.FACE_SIZE:
    frames = tf.image.resize(frames, (image_size, image_size), antialias=True)
  return frames


def _augment(video, seed, c: ml_collections.ConfigDict):
  """One draw per clip (the whole clip is flipped/shifted together), stateless in `seed`."""
  draws = tf.random.stateless_uniform([3], seed=seed)
  seeds = tf.random.experimental.stateless_split(seed, 3)
  video = tf.cond(draws[0] < c.flip_prob, lambda: tf.reverse(video, axis=[2]), lambda: video)
  video = tf.cond(draws[1] < c.brightness_prob, lambda: tf.image.stateless_random_brightness(
      video, c.brightness_max_delta, seeds[0]), lambda: video)
  video = tf.cond(draws[2] < c.hue_prob, lambda: tf.image.stateless_random_hue(
      video, c.hue_max_delta, seeds[1]), lambda: video)
  return tf.clip_by_value(video, 0.0, 1.0)


def _audio_offset_at(record, frame_index):
  """Sample index (in the track's audio) at the presentation time of frame(s) `frame_index`."""
  time = tf.gather(record["frame/timestamp"], frame_index) - record["audio/start_time"]
  return tf.maximum(0, tf.cast(tf.round(time * constants.SAMPLE_RATE), tf.int32))


def released_audio(record):
  """The first channel of the wav the released code extracts (``ffmpeg -i track -ac 2 -f wav``).

  For a whole-frame codec (AAC) the wav runs to the end of the codec frame holding the track's
  last sample: the track's samples, then the source's decoded tail (``audio/tail``, v2 records),
  then zeros where the source had no more. Other codecs and v1 records: the track's samples.
  (ffmpeg's up-mix scales a mono track by 0.707; the per-tensor dB reference cancels it.)
  """
  audio = record["audio"]
  length = tf.shape(audio)[0]
  frame = tf.cast(record.get("audio/frame_size", 0), tf.int32)
  codec = record.get("audio/codec", "")
  whole_frames = tf.logical_and(frame > 0, tf.reduce_any(
      tf.equal(codec, list(WHOLE_FRAME_CODECS))))
  released_length = tf.where(whole_frames, -(-length // tf.maximum(frame, 1)) * frame, length)
  tail = record.get("audio/tail", tf.zeros([0], tf.float32))
  return tf.concat([audio, tail, tf.zeros([released_length], tf.float32)],
                   0)[:released_length]


def released_silent_track(record):
  """True for a track the released builder scores with its dummy (silent) audio.

  Its builder looks the wav up under ``name.split('.')[0].split('@')[0].split('#')[0]`` while
  data_preparation names every wav after the track file: any name with ``@`` or ``#`` before
  its first ``.`` (the face tracker's ``<id>@partN``) misses. v1 records carry no track name:
  a track of a video with several tracks is taken as an ``@partN`` one.
  """
  name = record.get("track/name", tf.constant(""))
  by_name = tf.strings.regex_full_match(name, r"[^.]*[@#].*")
  by_count = tf.logical_and(tf.equal(name, ""), record["track/num_tracks"] > 1)
  return tf.logical_or(by_name, by_count)


def _spectrograms(record, starts, c, audio=None, silent=None):
  """[N, 183, mel, 1] for the windows at `starts` of `audio` (default: the record's), or zeros
  when the track has no audio or `silent` is true."""
  n = tf.shape(starts)[0]
  frames = num_spectrogram_frames(c.audio_window)
  audio = record["audio"] if audio is None else audio

  def real():
    return log_mel_spectrogram(_audio_windows(audio, starts, c.audio_window), c.num_mel_bins)

  has_audio = tf.logical_and(record["audio/has_audio"] > 0, tf.size(audio) > 0)
  if silent is not None:
    has_audio = tf.logical_and(has_audio, tf.logical_not(silent))
  spec = tf.cond(has_audio, real, lambda: tf.zeros([n, frames, c.num_mel_bins]))
  return tf.ensure_shape(spec, [None, frames, c.num_mel_bins])[..., None]


def _frames_to_uint8(frames, image_size: int):
  """Decoded uint8 frames at `image_size` (a resize rounds back to the uint8 grid)."""
  if image_size == constants.FACE_SIZE:
    return frames
  resized = tf.image.resize(frames, (image_size, image_size), antialias=True)
  return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def train_example(record, seed, c: ml_collections.ConfigDict, slot=None, num_slots: int = 1,
                  augment_seed=None):
  """One training clip: video [T, S, S, 3], audio [183, mel, 1], label.

  With ``augment_on='device'`` (default) the video is uint8 and, when augmenting, the example
  carries ``augment_seed`` (int32[2], a function of (seed, epoch, index)) for the train step;
  with 'host' it is float32 in [0, 1], augmented here. ``slot`` k of ``num_slots`` K (the K
  clips of one track in a pre-training batch) draws the start inside the k-th of K equal parts
  of the track, so the K clips (and their audio) do not overlap when the track holds K spans: a
  clip overlapping its own negative would ask the loss to tell nearly equal audio apart.
  ``augment_seed`` (default: drawn from ``seed``) fixes the augmentation's draws.
  """
  where = c.get("augment_on", "device")
  if where not in ("device", "host"):
    raise ValueError(f"augment_on must be 'device' or 'host', got {where!r}")
  length = tf.shape(record["image/encoded"])[0]
  span = c.num_frames * c.frame_stride
  if c.train_clip_start == "random" and slot is not None and num_slots > 1:
    part = length // num_slots
    first = tf.cast(slot, tf.int32) * part
    start = first + tf.random.stateless_uniform(
        [], seed=seed, maxval=tf.maximum(1, part - span + 1), dtype=tf.int32)
    start = tf.minimum(start, tf.maximum(0, length - span))   # parts shorter than a span
  elif c.train_clip_start == "random":
    max_start = tf.maximum(1, length - span + 1)
    start = tf.random.stateless_uniform([], seed=seed, maxval=max_start, dtype=tf.int32)
  elif c.train_clip_start == "start":
    start = tf.constant(0)
  else:
    raise ValueError(f"train_clip_start must be 'random' or 'start', got {c.train_clip_start!r}")
  indices = looped_indices(length, start, c.num_frames, c.frame_stride)
  frames = records.decode_frames(record["image/encoded"], indices)
  out = {"label": tf.cast(record["label"], tf.int32)}
  if augment_seed is None:
    augment_seed = tf.random.experimental.stateless_fold_in(seed, 1)
  if where == "device":
    video = _frames_to_uint8(frames, c.image_size)
    if c.augment:
      out["augment_seed"] = tf.cast(augment_seed, tf.int32)
  else:
    video = _frames_to_float(frames, c.image_size)
    if c.augment:
      video = _augment(video, augment_seed, c)
  out["video"] = tf.ensure_shape(video, [c.num_frames, c.image_size, c.image_size, 3])
  if c.use_audio:
    start_sample = _audio_offset_at(record, start)
    out["audio"] = _spectrograms(record, start_sample[None], c)[0]
  return out


def eval_example(record, c: ml_collections.ConfigDict):
  """All N evaluation clips of one track: video [N, T, S, S, 3], audio [N, 183, mel, 1]."""
  n, t = c.eval_num_clips, c.num_frames
  length = tf.shape(record["image/encoded"])[0]
  starts = linspace_starts(length, t * c.frame_stride, n)
  indices = tf.reshape(looped_indices(length, starts, t, c.frame_stride), [-1])
  video = _frames_to_float(records.decode_frames(record["image/encoded"], indices),
                           c.image_size)
  out = {
      "video": tf.reshape(video, [n, t, c.image_size, c.image_size, 3]),
      "label": tf.cast(record["label"], tf.int32),
      "video_id": record["video/id"], "track": tf.cast(record["track/index"], tf.int32),
      "dataset": record["dataset"], "category": record["category"],
      "method": record["method"], "has_audio": tf.cast(record["audio/has_audio"], tf.int32),
  }
  if c.use_audio:
    audio = record["audio"]
    if c.eval_audio_alignment == "released":
      audio = released_audio(record)
      audio_starts = linspace_starts(tf.shape(audio)[0], c.audio_window, n)
    elif c.eval_audio_alignment == "aligned":
      audio_starts = _audio_offset_at(record, starts)
    else:
      raise ValueError("eval_audio_alignment must be 'released' or 'aligned', got "
                       f"{c.eval_audio_alignment!r}")
    # .get: configs saved before this option existed (a workdir's config.json) lack it.
    shift = int(round(c.get("eval_audio_shift_seconds", 0.0) * constants.SAMPLE_RATE))
    if shift:  # _audio_windows loops the waveform, so a shift past either end wraps around
      audio_starts = audio_starts + shift
    # .get: as above, for configs saved before the option existed.
    multi_face = c.get("multi_face_audio", "released")
    if multi_face not in ("released", "own"):
      raise ValueError(f"multi_face_audio must be 'released' or 'own', got {multi_face!r}")
    silent = released_silent_track(record) if multi_face == "released" else None
    out["audio"] = _spectrograms(record, audio_starts, c, audio=audio, silent=silent)
  return out


# ----------------------------------------------------------------------------------------------
# Datasets


@dataclasses.dataclass(frozen=True)
class HostShard:
  """Which part of the data this host reads (multi-host JAX: one process per host)."""
  index: int = 0
  count: int = 1

  @classmethod
  def from_jax(cls) -> "HostShard":
    import jax
    return cls(jax.process_index(), jax.process_count())


def _host_files(files: Sequence[str], host: HostShard) -> list[str]:
  files = sorted(files)
  if len(files) < host.count:
    raise ValueError(f"{len(files)} shard files cannot be split over {host.count} hosts; "
                     "prepare the data with at least as many shards as hosts")
  return files[host.index::host.count]


@dataclasses.dataclass(frozen=True)
class RecordFilter:
  """Which tracks of a record set to use: FAKE tracks only of some methods/categories (empty =
  all); REAL tracks are always kept. One FF++ record set thereby serves every FF++ protocol."""
  keep_methods: tuple = ()
  keep_categories: tuple = ()

  @classmethod
  def from_config(cls, record_set) -> "RecordFilter":
    return cls(tuple(record_set.get("keep_methods", ())),
               tuple(record_set.get("keep_categories", ())))

  def keep(self, record) -> tf.Tensor:
    keep = tf.constant(True)
    for field, allowed in (("method", self.keep_methods), ("category", self.keep_categories)):
      if allowed:
        keep = tf.logical_and(keep, tf.reduce_any(tf.equal(record[field], list(allowed))))
    return tf.logical_or(tf.equal(record["label"], constants.REAL), keep)


def _records(files: Sequence[str], c, shuffle_seed: Optional[int] = None) -> tf.data.Dataset:
  """Serialized records; with a seed, files in a seeded order and read interleaved (a record
  is a whole track, megabytes, so mixing happens across files rather than in a big buffer)."""
  # One reader path (data.records.readable_records): a corrupt shard raises RecordError naming
  # file and record, or with skip_corrupt_records is read up to its first unreadable record.
  readable = records.readable_records(list(files), skip_corrupt=c.get("skip_corrupt_records",
                                                                      False))
  if shuffle_seed is None:
    return readable.dataset()
  order = np.random.default_rng(shuffle_seed).permutation(len(readable.files))
  return readable.dataset(order, cycle_length=c.get("interleave_files", 8))


_SELECTION_SPEC = {"label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
                   "method": tf.io.FixedLenFeature([], tf.string, default_value=""),
                   "category": tf.io.FixedLenFeature([], tf.string, default_value="")}


def _selection_fields(serialized):
  """Label, method and category only: what filtering needs, without copying any frame."""
  return tf.io.parse_single_sequence_example(serialized, context_features=_SELECTION_SPEC)[0]


def count_labels(files: Sequence[str], record_filter: RecordFilter = RecordFilter(),
                 skip_corrupt: bool = False) -> dict[int, int]:
  """Number of tracks per label after filtering (reads only the context of each record)."""
  readable = records.readable_records(list(files), skip_corrupt=skip_corrupt)
  ds = readable.dataset().map(
      _selection_fields, num_parallel_calls=tf.data.AUTOTUNE).filter(
          record_filter.keep).map(lambda r: r["label"])
  labels = np.fromiter(ds.as_numpy_iterator(), np.int64)
  return {int(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))}


def examples_per_epoch(label_counts: dict[int, int], oversample: str) -> int:
  """Epoch length: all tracks, or with the minority class repeated up to the majority's size."""
  if not label_counts:
    return 0
  if oversample == "balance" and len(label_counts) == 2:
    return 2 * max(label_counts.values())
  return sum(label_counts.values())


def _balanced(selected: tf.data.Dataset, label_counts: dict[int, int],
              spread: int) -> tf.data.Dataset:
  """Both classes at the majority's count: every record once, the minority's repeated.

  `selected` holds (selection fields, serialized record) pairs; the result, serialized records.

  The minority has m records and the majority M: its j-th record (in this epoch's seeded
  reading order) is repeated M // m times, once more for j < M % m, so an epoch holds exactly
  2 M examples and every majority record exactly once. The copies of one record leave
  `spread` records apart (an interleave over that many records at a time) before shuffling.
  """
  minority = min(label_counts, key=lambda k: (label_counts[k], k))
  base, extra = divmod(max(label_counts.values()), label_counts[minority])

  def repeats(minority_seen, fields_and_record):
    fields, serialized = fields_and_record
    is_minority = tf.equal(fields["label"], minority)
    copies = tf.where(is_minority, base + tf.cast(minority_seen < extra, tf.int64),
                      tf.constant(1, tf.int64))
    return minority_seen + tf.cast(is_minority, tf.int64), (copies, serialized)

  return selected.scan(tf.constant(0, tf.int64), repeats).interleave(
      lambda copies, serialized: tf.data.Dataset.from_tensors(serialized).repeat(copies),
      cycle_length=spread, block_length=1)


def train_dataset(files: Sequence[str], c: ml_collections.ConfigDict, *, batch_size: int,
                  seed: int, epoch: int, start_index: int = 0,
                  host: HostShard = HostShard(),
                  record_filter: RecordFilter = RecordFilter(),
                  label_counts: Optional[dict[int, int]] = None) -> tf.data.Dataset:
  """One epoch of training batches for this host, [batch_size, ...] (reshaped for pmap later).

  Args:
    files: all shard files of the training split (every host passes the same list).
    batch_size: examples per host per step.
    seed, epoch: every random draw is a stateless function of (seed, epoch, example index).
    start_index: examples of this epoch already consumed (resume); skipped before decoding.
    record_filter: which tracks to use (FF++ protocols).
    ``c.clips_per_track`` (optional, default 1): K > 1 yields K clips of each track in a row,
    the k-th starting at random inside the k-th of K equal parts of the track (pre-training
    batches with other, non-overlapping times of the same video as negatives).
    label_counts: per-label track counts of this host's filtered files (computed when None).
  """
  files = _host_files(files, host)
  epoch_seed = int(np.random.SeedSequence([seed, epoch, host.index]).generate_state(1)[0])
  counts = label_counts if label_counts is not None else count_labels(files, record_filter)
  clips = int(c.get("clips_per_track", 1))
  total = examples_per_epoch(counts, c.oversample) * clips
  if total < batch_size:
    raise ValueError(f"{total} training examples on host {host.index} cannot fill one batch "
                     f"of {batch_size}")

  # Records stay serialized until after selection, shuffling and skipping: only the examples
  # used are parsed and decoded. Each record is read once per epoch (balancing repeats the
  # minority class's records rather than reading the set once per class).
  selected = _records(files, c, shuffle_seed=epoch_seed).map(
      lambda serialized: (_selection_fields(serialized), serialized)).filter(
          lambda fields, _: record_filter.keep(fields))
  if c.oversample == "balance" and len(counts) == 2:
    ds = _balanced(selected, counts, spread=c.get("interleave_files", 8))
  elif c.oversample in ("balance", "none"):  # one class only: nothing to balance
    ds = selected.map(lambda _, serialized: serialized)
  else:
    raise ValueError(f"oversample must be 'balance' or 'none', got {c.oversample!r}")
  ds = ds.shuffle(c.shuffle_buffer, seed=epoch_seed, reshuffle_each_iteration=False)
  if clips > 1:  # consecutive clips of one track (pre-training: negatives from the same video)
    ds = ds.flat_map(lambda r: tf.data.Dataset.range(clips).map(lambda k: (k, r)))
  else:
    ds = ds.map(lambda r: (tf.constant(0, tf.int64), r))
  steps = total // batch_size
  ds = ds.take(steps * batch_size).enumerate().skip(start_index)
  example_seed = lambda i: tf.stack([tf.cast(epoch_seed % (2**31), tf.int64), i])
  # augment_per_track: the K clips of a track share the draws of its first clip, so what
  # differs between them is time alone (flip, brightness and hue are the same).
  per_track = clips > 1 and bool(c.get("augment_per_track", False))
  augment_seed = lambda i, k: (tf.random.experimental.stateless_fold_in(example_seed(i - k), 1)
                               if per_track else None)
  ds = ds.map(lambda i, kr: train_example(records.parse_track(kr[1]), example_seed(i), c,
                                          slot=kr[0], num_slots=clips,
                                          augment_seed=augment_seed(i, kr[0])),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def eval_dataset(files: Sequence[str], c: ml_collections.ConfigDict, *, batch_size: int,
                 host: HostShard = HostShard(),
                 record_filter: RecordFilter = RecordFilter()) -> tf.data.Dataset:
  """Every track once, N clips each, in fixed-size batches; the last one padded (`mask` 0)."""
  files = _host_files(files, host)
  ds = _records(files, c).map(records.parse_track).filter(record_filter.keep).map(
      lambda r: {**eval_example(r, c), "mask": tf.constant(1, tf.int32)},
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.batch(batch_size).map(lambda b: _pad_batch(b, batch_size)).prefetch(2)


def _pad_batch(batch, batch_size: int):
  def pad(x):
    missing = batch_size - tf.shape(x)[0]
    paddings = [[0, missing]] + [[0, 0]] * (len(x.shape) - 1)
    return tf.pad(x, paddings)
  return tf.nest.map_structure(pad, batch)


def shard_for_devices(batch, num_devices: int):
  """numpy [B, ...] -> [num_devices, B // num_devices, ...] for pmap."""
  def reshape(x):
    x = np.asarray(x)
    if x.shape[0] % num_devices:
      raise ValueError(f"batch of {x.shape[0]} does not split over {num_devices} devices")
    return x.reshape((num_devices, x.shape[0] // num_devices) + x.shape[1:])
  return {k: reshape(v) for k, v in batch.items()}


def iterate(ds: tf.data.Dataset, num_devices: int) -> Iterator[dict]:
  """Numpy batches shaped for pmap; a DataLossError names the broken shard and record."""
  iterator = ds.as_numpy_iterator()
  while True:
    try:
      batch = next(iterator)
    except StopIteration:
      return
    except tf.errors.DataLossError as e:
      # Shards are checked before reading (data.records.readable_records): one changed since.
      raise records.RecordError(
          f"a shard changed while it was read ({e.message.splitlines()[0]}); run "
          "data.records.validate_shards on the shards to locate it") from None
    yield shard_for_devices(batch, num_devices)
