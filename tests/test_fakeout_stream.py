"""The supervised stream of FakeOut, proven against an independent reading of the records.

Every training and evaluation example must carry its own video's label and the audio span of its
own clip. Each test track paints its identity and every frame's index into the pixels and has
its own noise as audio; the records are then read independently (data.records.read_tracks, numpy)
and each example produced by fakeout_jax.input_pipeline is traced back to its track and frames,
and its spectrogram recomputed from the samples the clip's start time selects (frame timestamps
and the audio's start time both offset from zero, so an offset bug shows).
"""
import numpy as np
import pytest

from data import constants, records
from fakeout_jax import input_pipeline as ip

NUM_TRACKS = 10
NUM_FRAMES = 24
TRACK_START = 1.25   # s: the first frame's time in its source video
AUDIO_START = 0.5    # s: the first audio sample's time in the source video
WINDOW = 4096        # audio samples per clip (small: fast spectrograms)
# Frames are flat colours: red = track id, green = frame index (steps survive JPEG).
RED_STEP, GREEN_STEP = 20, 9


def _labels():
  return [0, 1, 1, 0, 1, 1, 1, 0, 1, 1][:NUM_TRACKS]   # 3 real, 7 fake: oversampling matters


@pytest.fixture(scope="module")
def record_files(tmp_path_factory):
  directory = tmp_path_factory.mktemp("stream")
  rng = np.random.default_rng(7)
  labels = _labels()
  for shard in range(2):
    path = directory / records.shard_name("s", shard, 2)
    with records.ShardWriter(path) as writer:
      for track in range(shard, NUM_TRACKS, 2):
        frames = np.zeros((NUM_FRAMES, 224, 224, 3), np.uint8)
        frames[..., 0] = 10 + RED_STEP * track
        frames[..., 1] = 10 + GREEN_STEP * np.arange(NUM_FRAMES)[:, None, None]
        frames[..., 2] = 128
        timestamps = TRACK_START + np.arange(NUM_FRAMES) / constants.FPS
        seconds = timestamps[-1] - AUDIO_START + 2 * WINDOW / constants.SAMPLE_RATE
        audio = rng.uniform(-0.5, 0.5, int(seconds * constants.SAMPLE_RATE))
        audio *= np.linspace(0.2, 1.0, audio.size)   # loudness varies along the track
        arrays = records.TrackArrays(
            frames_224=frames, timestamps=timestamps, detected=np.ones(NUM_FRAMES, bool),
            fps=constants.FPS, audio=audio.astype(np.float32), audio_start_time=AUDIO_START)
        writer.write(records.serialize_track(arrays, records.TrackMetadata(
            video_id=f"video{track}", dataset="stream", label=labels[track],
            category="fake" if labels[track] else "real", track_index=0)))
  return records.list_shards(str(directory))


@pytest.fixture(scope="module")
def independent(record_files):
  """Track id -> its label, frame timestamps, audio and audio start, read without the pipeline."""
  out = {}
  for record in records.read_tracks(record_files):
    track = int(record["video/id"].decode().removeprefix("video"))
    out[track] = {"label": int(record["label"]), "timestamps": record["frame/timestamp"],
                  "audio": record["audio"], "audio_start": float(record["audio/start_time"])}
  assert sorted(out) == list(range(NUM_TRACKS))
  return out


def _config(**overrides):
  c = ip.get_config()
  c.num_frames, c.frame_stride, c.image_size = 4, 2, 32
  c.audio_window, c.augment, c.shuffle_buffer = WINDOW, False, 4
  c.update(overrides)
  return c


def _decode_frames(video):
  """[T, S, S, 3] clip -> (track id, frame indices) from its painted colours."""
  centre = np.asarray(video)[:, video.shape[1] // 2, video.shape[2] // 2].astype(np.float64)
  if video.dtype != np.uint8:  # evaluation clips are float32 in [0, 1]; training ones uint8
    centre *= 255.0
  tracks = np.round((centre[:, 0] - 10) / RED_STEP).astype(int)
  frames = np.round((centre[:, 1] - 10) / GREEN_STEP).astype(int)
  assert len(set(tracks)) == 1, f"one clip mixes tracks {tracks}"
  return int(tracks[0]), frames


def _expected_spectrogram(track, start_samples, c):
  """Log-mel of the windows at `start_samples`, computed together (their dB share one maximum,
  as the pipeline's N evaluation windows of a track do)."""
  audio = track["audio"]
  windows = [audio[np.arange(s, s + c.audio_window) % audio.size] for s in start_samples]
  return np.asarray(ip.log_mel_spectrogram(np.stack(windows), c.num_mel_bins))


def _sample_at(track, frame_index):
  """Independent arithmetic: the audio sample playing when frame `frame_index` is shown."""
  return int(round((track["timestamps"][frame_index] - track["audio_start"]) *
                   constants.SAMPLE_RATE))


def test_training_examples_carry_their_own_label_and_audio_span(record_files, independent):
  c = _config()
  seen_labels = []
  for epoch in range(2):
    ds = ip.train_dataset(record_files, c, batch_size=4, seed=3, epoch=epoch)
    for batch in ds.as_numpy_iterator():
      for video, label, audio in zip(batch["video"], batch["label"], batch["audio"]):
        track_id, frames = _decode_frames(video)
        track = independent[track_id]
        assert label == track["label"], f"track {track_id} labelled {label}"
        start = int(frames[0])
        np.testing.assert_array_equal(frames, start + c.frame_stride * np.arange(c.num_frames))
        expected = _expected_spectrogram(track, [_sample_at(track, start)], c)[0]
        np.testing.assert_allclose(audio[..., 0], expected, atol=1e-3,
                                   err_msg=f"track {track_id} clip at frame {start}")
        seen_labels.append(int(label))
  # Both classes were drawn (balanced oversampling), so labels were really put to the test.
  assert 0.3 < np.mean(seen_labels) < 0.7


def test_a_neighbouring_audio_span_is_told_apart(independent):
  """The check above is sensitive: the span one video frame later is a different spectrogram."""
  c = _config()
  track = independent[0]
  here = _expected_spectrogram(track, [_sample_at(track, 3)], c)[0]
  next_frame = _expected_spectrogram(track, [_sample_at(track, 4)], c)[0]
  assert np.abs(here - next_frame).max() > 1.0


def test_evaluation_examples_carry_their_own_label_and_audio_spans(record_files, independent):
  """With clip-aligned evaluation audio; the released placement (a linspace over the track's
  audio, not the clips' times) is pinned by tests/test_fakeout_input_pipeline.py."""
  c = _config(eval_num_clips=3, eval_audio_alignment="aligned")
  seen = set()
  for batch in ip.eval_dataset(record_files, c, batch_size=3).as_numpy_iterator():
    for i in np.flatnonzero(batch["mask"]):
      track_id = int(batch["video_id"][i].decode().removeprefix("video"))
      track = independent[track_id]
      assert batch["label"][i] == track["label"]
      span = c.num_frames * c.frame_stride
      starts = np.linspace(0, NUM_FRAMES - span, c.eval_num_clips).astype(int)
      expected = _expected_spectrogram(track, [_sample_at(track, s) for s in starts], c)
      for clip, start in enumerate(starts):
        painted_track, frames = _decode_frames(batch["video"][i, clip])
        assert painted_track == track_id
        np.testing.assert_array_equal(frames, start + c.frame_stride * np.arange(c.num_frames))
        np.testing.assert_allclose(batch["audio"][i, clip, ..., 0], expected[clip], atol=1e-3,
                                   err_msg=f"track {track_id} clip {clip}")
      seen.add(track_id)
  assert seen == set(range(NUM_TRACKS))


def test_pretraining_clips_come_in_runs_of_one_track(record_files, independent):
  """clips_per_track=K (pre-training): K clips of one track in a row, each with its own start
  and its own audio span; every track once per epoch, whatever its label."""
  c = _config(clips_per_track=3, oversample="none")
  ds = ip.train_dataset(record_files, c, batch_size=6, seed=0, epoch=0)
  runs = []
  for batch in ds.as_numpy_iterator():
    for video, audio in zip(batch["video"], batch["audio"]):
      track_id, frames = _decode_frames(video)
      track = independent[track_id]
      expected = _expected_spectrogram(track, [_sample_at(track, int(frames[0]))], c)[0]
      np.testing.assert_allclose(audio[..., 0], expected, atol=1e-3)
      runs.append((track_id, int(frames[0])))
  assert len(runs) == (NUM_TRACKS * 3 // 6) * 6
  groups = [runs[i:i + 3] for i in range(0, len(runs), 3)]
  assert all(len({t for t, _ in g}) == 1 for g in groups)
  assert len({g[0][0] for g in groups}) == len(groups)
  assert sum(len({s for _, s in g}) > 1 for g in groups) >= len(groups) // 2
  # The k-th clip starts inside the k-th third of the track: the clips of a run never overlap
  # (a negative sharing most of its audio with the positive would be a contradiction).
  span = c.num_frames * c.frame_stride
  for g in groups:
    starts = [s for _, s in g]
    part = NUM_FRAMES // 3
    assert all(k * part <= s <= max(k * part + part - span, 0) for k, s in enumerate(starts))
    assert all(b - a >= span for a, b in zip(starts, starts[1:])), starts


@pytest.mark.parametrize("per_track", [False, True])
def test_clips_of_one_track_share_their_augmentation_only_when_asked(record_files, per_track):
  """augment_per_track: the K clips of a track get one augmentation draw (what differs between
  a clip and its same-video negatives is then time alone); by default each clip draws its own."""
  c = _config(clips_per_track=3, oversample="none", augment=True, augment_on="device",
              augment_per_track=per_track)
  seeds = np.concatenate([b["augment_seed"] for b in ip.train_dataset(
      record_files, c, batch_size=6, seed=0, epoch=0).as_numpy_iterator()])
  groups = seeds.reshape(-1, 3, 2)
  shared = [bool((g == g[0]).all()) for g in groups]
  assert all(shared) if per_track else not any(shared)
  assert len({tuple(g[0]) for g in groups}) == len(groups)   # tracks still draw apart
