"""The TFRecord schema: round trip, version check, corrupt shards, atomic shard writing."""
import numpy as np
import pytest
import tensorflow as tf

from data import constants, records


def _track(n=6, audio=True, seed=0):
  rng = np.random.default_rng(seed)
  return records.TrackArrays(
      # Smooth images: JPEG is near-lossless on them, so the pixels can be compared.
      frames_224=(np.linspace(0, 200, 224)[None, None, :, None] + 5 * np.arange(n)[:, None,
                  None, None] + np.zeros((1, 224, 1, 3))).astype(np.uint8),
      frames_112=np.full((n, 112, 112, 3), 100, np.uint8),
      timestamps=np.arange(n) / constants.FPS,
      detected=np.array([1, 0] * (n // 2), bool),
      landmarks=rng.uniform(0, 224, (n, records.NUM_LANDMARKS, 3)),
      transforms=np.tile(np.array([[1.0, 0, -5], [0, 1.0, 3]]), (n, 1, 1)),
      transforms_112=np.tile(np.array([[0.5, 0, -2], [0, 0.5, 1]]), (n, 1, 1)),
      audio=np.sin(np.linspace(0, 100, 4410)).astype(np.float32) * 0.5 if audio else None,
      audio_start_time=0.25, fps=constants.FPS)


def _meta(**kw):
  return records.TrackMetadata(**{"video_id": "000_003", "dataset": "faceforensics",
                                  "label": 1, "split": "test", "method": "Deepfakes",
                                  "source_id": "003", "target_id": "000", **kw})


def test_roundtrip(tmp_path):
  track = _track()
  with records.ShardWriter(tmp_path / "s-00000-of-00001.tfrecord") as writer:
    writer.write(records.serialize_track(track, _meta()))
    writer.write(records.serialize_track(_track(audio=False), _meta(video_id="001", label=0)))
  first, second = list(records.read_tracks(tmp_path))
  assert first["video/id"] == b"000_003" and first["label"] == 1 and first["audio/has_audio"] == 1
  assert first["method"] == b"Deepfakes" and first["schema_version"] == records.SCHEMA_VERSION
  np.testing.assert_allclose(first["audio"], track.audio, atol=1 / 32767)
  assert first["audio/start_time"] == pytest.approx(0.25)
  np.testing.assert_allclose(first["frame/timestamp"], track.timestamps, rtol=1e-6)
  np.testing.assert_array_equal(first["frame/detected"], track.detected.astype(int))
  frames = records.decode_frames(first["image/encoded"], [1, 3]).numpy()
  assert frames.shape == (2, 224, 224, 3)
  # JPEG at quality 95 on a smooth ramp is near-lossless.
  assert np.abs(frames.astype(int) - track.frames_224[[1, 3]]).max() <= 4
  landmarks = records.decode_landmarks(first["frame/landmarks"]).numpy()
  np.testing.assert_allclose(landmarks, track.landmarks, atol=0.13)  # float16 at 224 px
  np.testing.assert_allclose(first["frame/transform"].reshape(-1, 2, 3), track.transforms)
  np.testing.assert_allclose(first["frame/transform_112"].reshape(-1, 2, 3),
                             track.transforms_112)
  assert second["audio/has_audio"] == 0 and second["audio"].size == 0 and second["label"] == 0


def test_other_schema_version_is_refused(tmp_path, monkeypatch):
  monkeypatch.setattr(records, "SCHEMA_VERSION", 99)
  with records.ShardWriter(tmp_path / "old.tfrecord") as writer:
    writer.write(records.serialize_track(_track(n=2), _meta()))
  monkeypatch.setattr(records, "SCHEMA_VERSION", 2)
  with pytest.raises(records.SchemaVersionError, match=r"version 99 .*reads versions 1 and 2"):
    list(records.read_tracks(tmp_path))
  assert "schema version [99], expected one of (1, 2)" in records.validate_shards(
      [str(tmp_path / "old.tfrecord")])[0]


def test_truncated_shard_names_file_and_record(tmp_path):
  path = tmp_path / "s.tfrecord"
  with records.ShardWriter(path) as writer:
    for i in range(3):
      writer.write(records.serialize_track(_track(n=2, seed=i), _meta(video_id=str(i))))
  data = path.read_bytes()
  path.write_bytes(data[:len(data) - 100])
  with pytest.raises(records.RecordError, match=r"s\.tfrecord: corrupt or truncated after "
                                                r"record 1 \(record 2 unreadable"):
    list(records.read_tracks(path))


def test_shard_writer_is_atomic(tmp_path):
  path = tmp_path / "s.tfrecord"
  with pytest.raises(RuntimeError):
    with records.ShardWriter(path) as writer:
      writer.write(records.serialize_track(_track(n=2), _meta()))
      raise RuntimeError("worker died")
  assert not path.exists() and not list(tmp_path.iterdir())


def test_inconsistent_arrays_and_labels_are_rejected():
  track = _track(n=4)
  track.timestamps = track.timestamps[:3]
  with pytest.raises(ValueError, match=r"timestamps: expected \(4,\), got \(3,\)"):
    records.serialize_track(track, _meta())
  with pytest.raises(ValueError, match="label must be 0"):
    _meta(label=2)


def test_parse_inside_tf_data_graph(tmp_path):
  with records.ShardWriter(tmp_path / "s.tfrecord") as writer:
    writer.write(records.serialize_track(_track(n=4), _meta()))
  ds = tf.data.TFRecordDataset(str(tmp_path / "s.tfrecord")).map(records.parse_track).map(
      lambda r: records.decode_frames(r["image_112/encoded"], tf.range(2)))
  out = next(iter(ds)).numpy()
  assert out.shape == (2, 112, 112, 3) and abs(int(out.mean()) - 100) <= 2
