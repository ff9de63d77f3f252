"""VoxCeleb2 (Chung et al., 2018): real talking-head clips of 6112 celebrities from YouTube.

The inconsistency detector trains on these real videos only, with FakeAVCeleb's identities
excluded (FakeAVCeleb was made from VoxCeleb2, so its ids are VoxCeleb2 ids).

Where to get it: https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox2.html (the request form
gives the links): ``vox2_dev_mp4_parta..`` concatenated into ``vox2_mp4.zip`` and
``vox2_test_mp4.zip``, unzipped into the root.

Layout under ``--root``::

  dev/mp4/<identity>/<youtube_id>/<clip>.mp4     e.g. dev/mp4/id00012/21Uxsk56VDQ/00001.mp4
  test/mp4/<identity>/<youtube_id>/<clip>.mp4
  (a root holding only mp4/<identity>/... is read as the requested split)

Splits: ``dev`` (alias ``train``) and ``test``. Every video is real. Identities in
``exclude_ids`` (a list file) or among the ids of a FakeAVCeleb meta_data.csv
(``exclude_fakeavceleb`` = that file or the FakeAVCeleb root) never enter the listing.

Command-line name: ``voxceleb2``.
"""
from __future__ import annotations

import logging
import os
import pathlib
from typing import Optional

from data import constants
from data.datasets import base
from data.datasets import fakeavceleb

log = logging.getLogger(__name__)

SPLIT_DIRS = {"dev": "dev", "train": "dev", "test": "test"}


def fakeavceleb_identities(path: base.PathLike) -> set[str]:
  """Every VoxCeleb2 id FakeAVCeleb uses (source and target columns) from its meta_data.csv."""
  path = pathlib.Path(path).expanduser()
  if path.is_dir():
    path = path / fakeavceleb.META_FILE
  if not path.is_file():
    raise FileNotFoundError(f"exclude_fakeavceleb: {str(path)!r} is not FakeAVCeleb's "
                            f"{fakeavceleb.META_FILE} (or a folder holding it)")
  ids = set()
  for row in fakeavceleb.read_metadata(path):
    ids |= {v for v in (row["source"], row["target1"], row["target2"])
            if fakeavceleb.identity_ids(v)}
  return ids


class VoxCeleb2Adapter(base.DatasetAdapter):
  """VoxCeleb2 identity folders (all real).

  Args:
    root: the folder holding dev/mp4/ and/or test/mp4/.
    exclude_ids: a list file of identities to leave out.
    exclude_fakeavceleb: FakeAVCeleb's meta_data.csv (or root): leave out all its ids.
    max_clips_per_identity: keep at most this many clips per identity (0 = all), the first in
      sorted order, so the choice is deterministic.
  """
  name = "voxceleb2"
  title = "VoxCeleb2"
  splits = ("dev", "train", "test")
  expected_layout = "dev/mp4/id00012/21Uxsk56VDQ/00001.mp4 (and/or test/mp4/...)"

  def __init__(self, root: base.PathLike, exclude_ids: Optional[str] = None,
               exclude_fakeavceleb: Optional[str] = None, max_clips_per_identity: int = 0):
    super().__init__(root)
    if max_clips_per_identity < 0:
      raise ValueError(f"max_clips_per_identity must be >= 0, got {max_clips_per_identity}")
    self.exclude_ids = exclude_ids
    self.exclude_fakeavceleb = exclude_fakeavceleb
    self.max_clips = max_clips_per_identity

  def _mp4_dir(self, split: str) -> Optional[pathlib.Path]:
    folder = self.root / SPLIT_DIRS[split] / "mp4"
    if folder.is_dir():
      return folder
    if (self.root / "mp4").is_dir():
      return self.root / "mp4"
    return None

  def _check_root(self):
    if not any(self._mp4_dir(s) for s in self.splits):
      raise self.layout_error("no dev/mp4/, test/mp4/ or mp4/ folder")

  def excluded(self) -> set[str]:
    ids = set()
    if self.exclude_ids:
      ids |= set(base.read_id_list(self.exclude_ids, "VoxCeleb2 exclusion"))
    if self.exclude_fakeavceleb:
      ids |= fakeavceleb_identities(self.exclude_fakeavceleb)
    return ids

  def _list(self, split):
    folder = self._mp4_dir(split)
    if folder is None:
      raise self.layout_error(f"no {SPLIT_DIRS[split]}/mp4/ for split {split!r}")
    excluded = self.excluded()
    records, dropped = [], set()
    for identity in sorted(e.name for e in os.scandir(folder) if e.is_dir()):
      if identity in excluded:
        dropped.add(identity)
        continue
      clips = []
      for youtube in sorted(e.name for e in os.scandir(folder / identity) if e.is_dir()):
        clips += [(youtube, e.name) for e in os.scandir(folder / identity / youtube)
                  if e.is_file() and e.name.lower().endswith(".mp4")]
      clips.sort()
      if self.max_clips:
        clips = clips[:self.max_clips]
      for youtube, clip in clips:
        stem = clip.rsplit(".", 1)[0]
        records.append(base.VideoRecord(
            video_path=str(folder / identity / youtube / clip), label=constants.REAL,
            video_id=f"{identity}/{youtube}/{stem}", dataset=self.name,
            split=split, category="real", identity=identity, source_id=youtube,
            extra={"youtube_id": youtube, "clip": stem}))
    if excluded:
      log.info("VoxCeleb2/%s: %d excluded identities left out (%d of them present)", split,
               len(excluded), len(dropped))
    return records, []
