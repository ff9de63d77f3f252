"""A stand-in face tracker for data.prepare's bookkeeping tests (locking, journal, resume).

These tests are about which shards, manifest lines and exit codes a run leaves behind, not
about tracking, so each video becomes one tiny real record (two black frames) without MTCNN or
FaceMesh, and the video ``BROKEN`` fails the way an unreadable file does.
``python -m tests.prepare_fakes ARGS`` runs the data.prepare command with it (for SIGKILL and
concurrency tests), sleeping ``PREPARE_FAKE_SECONDS`` per video.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from data import prepare
from data import records
from tests import dataset_trees

BROKEN = "001"


def make_tree(root):
  """An FF++ tree of placeholder files: 000, 001 and two fakes; 'test' lists them all."""
  dataset_trees.make_ffpp(root, pairs=(("000", "001"), ("002", "003")), methods=("Deepfakes",))
  dataset_trees.touch(root / "splits" / "test.json", '[["000", "001"], ["002", "003"]]')
  return root


def fake_process_video(record):
  time.sleep(float(os.environ.get("PREPARE_FAKE_SECONDS", "0")))
  entry = {"input": record.video_id, "path": record.video_path, "label": record.label,
           "category": record.category, "status": "ok", "reason": None, "message": None,
           "tracks": [{"name": record.video_id, "frames": 2}], "seconds": 0.0}
  if record.video_id == BROKEN:
    entry.update(status="error", reason="not_a_video", message="not a video file", tracks=[])
    return entry, []
  arrays = records.TrackArrays(frames_224=np.zeros((2, 224, 224, 3), np.uint8),
                               timestamps=np.array([0.0, 1 / 29]), detected=np.ones(2, bool),
                               fps=29.0)
  meta = records.TrackMetadata(video_id=record.video_id, dataset=record.dataset,
                               label=record.label, split=record.split)
  return entry, [records.serialize_track(arrays, meta)]


def install(module=prepare, monkeypatch=None):
  """Replaces the tracker of `module` (data.prepare) by the stand-in."""
  setter = monkeypatch.setattr if monkeypatch is not None else setattr
  setter(module, "process_video", fake_process_video)
  setter(module, "init_worker", lambda *args, **kwargs: None)


if __name__ == "__main__":
  install()
  sys.exit(prepare.main(sys.argv[1:]))
