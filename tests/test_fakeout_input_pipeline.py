"""FakeOut's input pipeline: the released log-mel, clip sampling, determinism, resume, sharding."""
import collections

import librosa
import numpy as np
import pytest
import tensorflow as tf

from data import constants, records
from fakeout_jax import input_pipeline as ip


def _tf_mel_matrix_numpy(num_mel_bins, num_bins, sample_rate, lower_hz, upper_hz):
  """TensorFlow's documented HTK mel weight matrix, written independently in numpy."""
  hz_to_mel = lambda f: 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)
  bin_mels = hz_to_mel(np.linspace(0.0, sample_rate / 2, num_bins))[1:]  # DC row stays zero
  edges = np.linspace(hz_to_mel(lower_hz), hz_to_mel(upper_hz), num_mel_bins + 2)
  lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
  rising = (bin_mels[:, None] - lower) / (center - lower)
  falling = (upper - bin_mels[:, None]) / (upper - center)
  weights = np.maximum(0.0, np.minimum(rising, falling))
  return np.concatenate([np.zeros((1, num_mel_bins)), weights], axis=0)


def _reference_log_mel(audio, mel_matrix):
  """float64 numpy STFT (periodic Hann, no end padding) + librosa.power_to_db."""
  frames = librosa.util.frame(np.asarray(audio, np.float64), frame_length=2048, hop_length=256,
                              axis=0)
  window = np.hanning(2049)[:-1]  # periodic Hann
  spectrum = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
  return librosa.power_to_db(spectrum @ mel_matrix, ref=np.max, amin=1e-16, top_db=80.0)


def test_mel_matrix_is_tensorflows_documented_htk_matrix():
  ours = ip.mel_matrix().numpy()
  assert ours.shape == (1025, 80)
  # TensorFlow builds the matrix in float32: 2e-5 absolute on weights of order 0.1-1.
  np.testing.assert_allclose(ours, _tf_mel_matrix_numpy(80, 1025, 44100, 0.0, 22050.0),
                             atol=2e-5, rtol=0)


def test_log_mel_matches_an_independent_computation():
  rng = np.random.default_rng(0)
  t = np.arange(ip.AUDIO_WINDOW) / constants.SAMPLE_RATE
  audio = (0.5 * np.sin(2 * np.pi * 220 * t * (1 + t)) + 0.05 * rng.standard_normal(t.size))
  audio = audio.astype(np.float32)
  ours = ip.log_mel_spectrogram(tf.constant(audio)).numpy()
  assert ours.shape == (183, 80) == (ip.num_spectrogram_frames(), 80)
  # Same weights, independent STFT / power / dB: within 1e-4 dB everywhere.
  reference = _reference_log_mel(audio, ip.mel_matrix().numpy().astype(np.float64))
  np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=0)
  # Fully independent (numpy mel matrix too): TF's float32 matrix adds up to ~2e-4 dB.
  independent = _reference_log_mel(audio, _tf_mel_matrix_numpy(80, 1025, 44100, 0.0, 22050.0))
  np.testing.assert_allclose(ours, independent, atol=5e-4, rtol=0)


def test_log_mel_references_the_whole_tensor():
  quiet, loud = 0.01 * np.ones(ip.AUDIO_WINDOW), np.sin(np.arange(ip.AUDIO_WINDOW) * 0.1)
  both = ip.log_mel_spectrogram(tf.constant(np.stack([quiet, loud]), tf.float32)).numpy()
  assert both[1].max() == pytest.approx(0.0) and both[0].max() < -20
  assert both.min() >= -80.0 - 1e-4


def test_silence_gives_zeros_like_the_released_dummy_audio():
  out = ip.log_mel_spectrogram(tf.zeros([2, ip.AUDIO_WINDOW])).numpy()
  np.testing.assert_array_equal(out, np.zeros_like(out))


def test_linspace_starts_and_looping_match_the_released_sampler():
  starts = ip.linspace_starts(300, 64, 5).numpy()
  np.testing.assert_array_equal(starts, np.linspace(0, 300 - 64, 5).astype(int))
  np.testing.assert_array_equal(ip.linspace_starts(40, 64, 3).numpy(), [0, 0, 0])
  idx = ip.looped_indices(40, tf.constant([0, 10]), 32, 2).numpy()
  np.testing.assert_array_equal(idx[0], np.arange(0, 64, 2) % 40)
  np.testing.assert_array_equal(idx[1], np.arange(10, 74, 2) % 40)


# ----------------------------------------------------------------------------------------------
# Datasets from real shards


def _write_shards(tmp_path, labels, frames=40, shards=2, audio=True, methods=None):
  paths = []
  per_shard = int(np.ceil(len(labels) / shards))
  for s in range(shards):
    path = tmp_path / records.shard_name("train", s, shards)
    with records.ShardWriter(path) as writer:
      for i in range(s * per_shard, min(len(labels), (s + 1) * per_shard)):
        value = (np.arange(frames) * 5 + i) % 250
        track = records.TrackArrays(
            frames_224=np.broadcast_to(value[:, None, None, None].astype(np.uint8),
                                       (frames, 224, 224, 3)).copy(),
            timestamps=np.arange(frames) / constants.FPS, detected=np.ones(frames, bool),
            fps=constants.FPS,
            audio=(np.sin(np.arange(frames * 1521) * 0.05 * (1 + i)) * 0.5).astype(np.float32)
            if audio else None)
        writer.write(records.serialize_track(track, records.TrackMetadata(
            video_id=f"v{i:03d}", dataset="unit", label=labels[i],
            method=methods[i] if methods else "")))
    paths.append(str(path))
  return paths


def _small_config(**overrides):
  c = ip.get_config()
  c.num_frames, c.image_size, c.eval_num_clips, c.shuffle_buffer = 4, 32, 3, 8
  c.update(overrides)
  return c


def test_train_batches_are_deterministic_and_resumable(tmp_path):
  files = _write_shards(tmp_path, [0] * 3 + [1] * 9)
  c = _small_config()
  make = lambda start=0, seed=0: list(ip.train_dataset(
      files, c, batch_size=4, seed=seed, epoch=1, start_index=start).as_numpy_iterator())
  full, again, other = make(), make(), make(seed=1)
  assert len(full) == 2 * 9 // 4  # minority class oversampled up to the majority's size
  for a, b in zip(full, again):
    np.testing.assert_array_equal(a["video"], b["video"])
    np.testing.assert_array_equal(a["audio"], b["audio"])
  assert any(not np.array_equal(a["video"], b["video"]) for a, b in zip(full, other))
  resumed = make(start=4)
  assert len(resumed) == len(full) - 1
  for a, b in zip(full[1:], resumed):
    np.testing.assert_array_equal(a["video"], b["video"])
    np.testing.assert_array_equal(a["label"], b["label"])
  batch = full[0]
  # uint8 frames, augmented on the device from each example's seed (fakeout_jax.augment).
  assert batch["video"].shape == (4, 4, 32, 32, 3) and batch["video"].dtype == np.uint8
  assert batch["augment_seed"].shape == (4, 2)
  assert batch["audio"].shape == (4, 183, 80, 1)
  c.augment_on = "host"  # the former tf.data augmentation: float32 in [0, 1]
  batch = next(ip.train_dataset(files, c, batch_size=4, seed=0, epoch=1).as_numpy_iterator())
  assert batch["video"].dtype == np.float32 and "augment_seed" not in batch
  assert 0.0 <= batch["video"].min() and batch["video"].max() <= 1.0


def test_oversampling_balances_classes(tmp_path):
  # One frame per track: every clip's pixels are its track's index i.
  files = _write_shards(tmp_path, [0] * 2 + [1] * 10, frames=1)
  c = _small_config(num_frames=2, augment=False)
  batches = list(ip.train_dataset(files, c, batch_size=4, seed=0, epoch=0).as_numpy_iterator())
  labels = np.concatenate([b["label"] for b in batches])
  tracks = np.concatenate([np.rint(b["video"][:, 0, 0, 0, 0]) for b in batches]).astype(int)
  assert len(labels) == 20 and labels.sum() == 10  # exactly the majority's count of each
  # Every majority track once, every minority track equally often, in one epoch.
  assert collections.Counter(tracks.tolist()) == {0: 5, 1: 5, **{i: 1 for i in range(2, 12)}}
  # One class only: nothing to balance, every track once.
  (tmp_path / "one").mkdir()
  one_class = _write_shards(tmp_path / "one", [1] * 4, frames=1)
  batches = list(ip.train_dataset(one_class, c, batch_size=2, seed=0, epoch=0)
                 .as_numpy_iterator())
  assert sorted(np.concatenate([np.rint(b["video"][:, 0, 0, 0, 0]) for b in batches])) == [
      0, 1, 2, 3]
  c.oversample = "none"
  labels = np.concatenate([b["label"] for b in ip.train_dataset(
      files, c, batch_size=4, seed=0, epoch=0).as_numpy_iterator()])
  assert len(labels) == 12 and labels.sum() == 10


def test_balancing_keeps_every_record_once_and_repeats_the_minority_evenly(tmp_path):
  files = _write_shards(tmp_path, [0] * 3 + [1] * 7, frames=4)
  c = _small_config()
  seen = collections.Counter()
  selected = ip._records(files, c, shuffle_seed=5).map(
      lambda serialized: (ip._selection_fields(serialized), serialized))
  for serialized in ip._balanced(selected, {0: 3, 1: 7}, spread=4).as_numpy_iterator():
    track = records.parse_track(serialized)
    seen[(int(track["label"]), track["video/id"].numpy().decode())] += 1
  assert sorted(n for (label, _), n in seen.items() if label == 1) == [1] * 7
  assert sorted(n for (label, _), n in seen.items() if label == 0) == [2, 2, 3]  # 7 = 2 + 2 + 3


def test_eval_clips_follow_the_released_offsets(tmp_path):
  files = _write_shards(tmp_path, [0, 1, 1], frames=40, shards=1)
  c = _small_config(augment=False)
  batches = list(ip.eval_dataset(files, c, batch_size=2).as_numpy_iterator())
  assert [b["mask"].tolist() for b in batches] == [[1, 1], [1, 0]]
  video = batches[0]["video"]
  assert video.shape == (2, 3, 4, 32, 32, 3)
  starts = np.linspace(0, 40 - 4 * 2, 3).astype(int)
  expected = ((starts[:, None] + np.arange(0, 8, 2)) * 5 + 0) % 250 / 255.0  # track 0's values
  np.testing.assert_allclose(video[0, :, :, 0, 0, 0], expected, atol=2 / 255)
  assert batches[0]["audio"].shape == (2, 3, 183, 80, 1)
  assert batches[0]["video_id"].tolist() == [b"v000", b"v001"]


def test_tracks_without_audio_get_zero_spectrograms(tmp_path):
  files = _write_shards(tmp_path, [0, 1], audio=False, shards=1)
  batch = next(ip.eval_dataset(files, _small_config(), batch_size=2).as_numpy_iterator())
  assert batch["has_audio"].tolist() == [0, 0] and not batch["audio"].any()


def test_hosts_read_disjoint_files(tmp_path):
  files = _write_shards(tmp_path, [0, 1] * 4, shards=4)
  c = _small_config(oversample="none", augment=False)
  seen = []
  for index in range(2):
    host = ip.HostShard(index, 2)
    for b in ip.eval_dataset(files, c, batch_size=1, host=host).as_numpy_iterator():
      seen.append(b["video_id"][0])
  assert sorted(seen) == [f"v{i:03d}".encode() for i in range(8)]
  with pytest.raises(ValueError, match="cannot be split over 8 hosts"):
    ip.train_dataset(files, c, batch_size=1, seed=0, epoch=0, host=ip.HostShard(0, 8))


def test_shard_for_devices():
  batch = {"video": np.zeros((4, 2)), "label": np.arange(4)}
  out = ip.shard_for_devices(batch, 2)
  assert out["video"].shape == (2, 2, 2) and out["label"].tolist() == [[0, 1], [2, 3]]
  with pytest.raises(ValueError, match="does not split over 3 devices"):
    ip.shard_for_devices(batch, 3)


def test_record_filter_keeps_reals_and_the_chosen_methods(tmp_path):
  labels = [0, 1, 1, 1]
  files = _write_shards(tmp_path, labels, frames=8, shards=1,
                        methods=["", "Deepfakes", "FaceSwap", "Face2Face"])
  keep = ip.RecordFilter(keep_methods=("Deepfakes", "Face2Face"))
  assert ip.count_labels(files, keep) == {0: 1, 1: 2}
  c = _small_config(num_frames=2)
  ids = [b["video_id"][0] for b in ip.eval_dataset(files, c, batch_size=1,
                                                   record_filter=keep).as_numpy_iterator()]
  assert ids == [b"v000", b"v001", b"v003"]


@pytest.mark.parametrize("alignment", ["released", "aligned"])
def test_eval_audio_shift_moves_every_window_and_wraps_around(tmp_path, alignment):
  frames = 40
  rng = np.random.default_rng(3)
  samples = int(frames / constants.FPS * constants.SAMPLE_RATE)
  # Noise under a rising envelope: a shifted window has a different spectrogram (a pure tone
  # would not, so the test could not tell a shift from none).
  audio = rng.uniform(-1, 1, samples) * np.linspace(0.01, 0.9, samples)
  audio = (np.round(audio * 32767) / 32767).astype(np.float32)  # what 16-bit PCM keeps
  path = tmp_path / records.shard_name("test", 0, 1)
  with records.ShardWriter(path) as writer:
    writer.write(records.serialize_track(records.TrackArrays(
        frames_224=np.zeros((frames, 224, 224, 3), np.uint8),
        timestamps=np.arange(frames) / constants.FPS, detected=np.ones(frames, bool),
        fps=constants.FPS, audio=audio), records.TrackMetadata(
            video_id="v", dataset="unit", label=0)))
  c = _small_config(augment=False, eval_audio_alignment=alignment)
  if alignment == "released":
    starts = np.linspace(0, samples - ip.AUDIO_WINDOW, c.eval_num_clips).astype(int)
  else:
    clip_starts = np.linspace(0, frames - c.num_frames * c.frame_stride,
                              c.eval_num_clips).astype(int)
    starts = np.round(clip_starts / constants.FPS * constants.SAMPLE_RATE).astype(int)

  def spectrograms(shift_seconds):
    c.eval_audio_shift_seconds = shift_seconds
    batch = next(ip.eval_dataset([str(path)], c, batch_size=1).as_numpy_iterator())
    return batch["audio"][0, ..., 0]

  unshifted = spectrograms(0.0)
  for shift in (0.25, -0.5):
    offset = int(round(shift * constants.SAMPLE_RATE))
    windows = np.take(audio, (starts + offset)[:, None] + np.arange(ip.AUDIO_WINDOW), mode="wrap")
    expected = ip.log_mel_spectrogram(tf.constant(windows)).numpy()
    shifted = spectrograms(shift)
    np.testing.assert_allclose(shifted, expected, atol=1e-3, rtol=0)
    assert np.abs(shifted - unshifted).mean() > 1.0  # dB: the shift changed what is heard
