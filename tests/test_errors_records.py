"""Corrupt records get one answer in every pass of both detectors (data.records.readable_records).

Three ways a shard goes bad (issue 19, case 3): cut short, bytes appended, a text file named like
a shard. Without ``skip_corrupt_records`` every pass refuses with the file and the record; with
it, every pass reads the same records (up to the corrupt one) and the loss is counted.
"""
import json

import numpy as np
import pytest

from data import records
from fakeout_jax import input_pipeline as fakeout_input
from inconsistency_jax import input_pipeline as inconsistency_input
from tests import inconsistency_records as fixtures

CORRUPTIONS = {
    "truncated": lambda data: data[:-200],
    "appended": lambda data: data + b"\x00garbage after the last record",
    "text": lambda data: b"this is not a TFRecord file\n" * 20,
}


def _set(directory, corruption=None, journal=False):
  """Two shards of three tracks each; shard 1 damaged by `corruption`."""
  tracks = [(fixtures.track_arrays(i, 24, seed=i),
             fixtures.meta(f"id{i:03d}/v0", f"id{i:03d}", label=i % 2)) for i in range(6)]
  files = fixtures.write_shards(directory, tracks, shards=2)
  if journal:  # what data.prepare journals for each finished shard
    (directory / ".shards.jsonl").write_text("".join(
        json.dumps({"input": f, "path": f, "status": "ok", "records": 3}) + "\n"
        for f in files))
  if corruption:
    damaged = directory / files[1]
    damaged.write_bytes(CORRUPTIONS[corruption](damaged.read_bytes()))
  return files


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_every_pass_refuses_a_corrupt_shard_naming_file_and_record(tmp_path, corruption):
  files = _set(tmp_path, corruption)
  record = {"truncated": "record 2", "appended": "record 3", "text": "record 0"}[corruption]
  passes = {
      "check": lambda: records.readable_records(files, skip_corrupt=False),
      "fakeout count": lambda: fakeout_input.count_labels(files),
      "fakeout eval": lambda: list(fakeout_input.eval_dataset(
          files, _fakeout_config(), batch_size=2).as_numpy_iterator()),
      "inconsistency index": lambda: inconsistency_input.index_tracks(files),
      "inconsistency score": lambda: list(inconsistency_input.score_dataset(
          files, _spec(), num_windows=2, batch_size=2).as_numpy_iterator()),
  }
  for name, run in passes.items():
    with pytest.raises(records.RecordError) as error:
      run()
    message = str(error.value)
    assert files[1] in message and record in message and "skip_corrupt_records" in message, (
        name, message)


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_skipping_counts_what_is_lost(tmp_path, corruption):
  files = _set(tmp_path, corruption, journal=True)
  readable = {"truncated": 5, "appended": 6, "text": 3}[corruption]
  result = records.readable_records(files, skip_corrupt=True)
  assert sum(result.counts) == readable
  assert result.records_skipped == 6 - readable  # exact: the journal knows each shard's count
  assert len(result.report()["corrupt_shards"]) == 1


def test_skipping_reads_the_same_records_in_every_pass(tmp_path):
  files = _set(tmp_path, "truncated", journal=True)
  readable = 5
  labels = fakeout_input.count_labels(files, skip_corrupt=True)
  assert sum(labels.values()) == readable
  config = _fakeout_config(skip_corrupt_records=True)
  masks = [b["mask"] for b in fakeout_input.eval_dataset(files, config, batch_size=2)
           .as_numpy_iterator()]
  assert int(np.concatenate(masks).sum()) == readable
  assert len(inconsistency_input.index_tracks(files, skip_corrupt=True)) == readable
  batches = inconsistency_input.score_dataset(files, _spec(), num_windows=2, batch_size=2,
                                              skip_corrupt=True)
  assert int(sum(b["mask"].sum() for b in batches.as_numpy_iterator())) == readable


def test_without_a_journal_the_loss_is_a_lower_bound(tmp_path):
  files = _set(tmp_path, "truncated")
  result = records.readable_records(files, skip_corrupt=True)
  assert result.records_skipped == 1 and "record 2" in result.report()["corrupt_shards"][0]


def _fakeout_config(**overrides):
  c = fakeout_input.get_config()
  c.num_frames, c.image_size, c.eval_num_clips, c.use_audio = 4, 32, 1, False
  c.update(overrides)
  return c


def _spec():
  return inconsistency_input.WindowSpec(window_frames=8, frames_per_window=2, audio_samples=800,
                                        face_size=32)
