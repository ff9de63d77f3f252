"""Celeb-DF v2 (Li et al., 2020): celebrity face swaps.

Where to get it: the request form at https://github.com/yuezunli/celeb-deepfakeforensics;
unzipped, the root is ``Celeb-DF-v2/``.

Layout under ``--root``::

  Celeb-real/id<N>_<NNNN>.mp4                 real, celebrity id<N>
  YouTube-real/<NNNNN>.mp4                    real
  Celeb-synthesis/id<T>_id<S>_<NNNN>.mp4      fake: id<S>'s face on id<T>'s video <NNNN>
  List_of_testing_videos.txt                  "<label> <folder>/<file>"; label 1 = REAL, 0 = fake

Splits: ``test`` (518 videos: the official list, or FakeOut's bundled copy
Celeb_DF_v2_labels.csv when the list file is absent), ``train`` (the videos not in the test
list) and ``all``. Labels always come from the folder; a list label that disagrees is an error.

Command-line name: ``celebdf``.
"""
from __future__ import annotations

import logging
import pathlib

from data import constants
from data.datasets import base
from data.datasets import splits as split_facts

log = logging.getLogger(__name__)

FOLDERS = {"Celeb-real": constants.REAL, "YouTube-real": constants.REAL,
           "Celeb-synthesis": constants.FAKE}
TEST_LIST = "List_of_testing_videos.txt"


def folder_of(stem: str) -> str:
  """The Celeb-DF folder a bare file stem belongs to, from its naming pattern."""
  parts = stem.split("_")
  if len(parts) == 3:
    return "Celeb-synthesis"
  if len(parts) == 2:
    return "Celeb-real"
  return "YouTube-real"


class CelebDFAdapter(base.DatasetAdapter):
  """Celeb-DF v2 (see the module docstring)."""
  name = "celebdf"
  title = "Celeb-DF v2"
  splits = ("test", "train", "all")
  expected_layout = ("Celeb-DF-v2/ with Celeb-real/, Celeb-synthesis/, YouTube-real/ and "
                     "List_of_testing_videos.txt")

  def _check_root(self):
    if not any((self.root / f).is_dir() for f in FOLDERS):
      raise self.layout_error(f"none of {', '.join(f + '/' for f in FOLDERS)}")

  def test_list(self) -> list[str]:
    """Test videos as 'folder/stem', from the official list or the bundled copy."""
    official = self.root / TEST_LIST
    if not official.is_file():
      log.info("Celeb-DF: no %s at the root; using FakeOut's bundled test list", TEST_LIST)
      return [f"{folder_of(stem)}/{stem}" for stem, _ in split_facts.label_list("Celeb_DF_v2")]
    out = []
    for number, line in enumerate(official.read_text(encoding="utf-8").splitlines(), 1):
      if not line.strip():
        continue
      label_text, _, rel = line.strip().partition(" ")
      rel = pathlib.PurePosixPath(rel.strip().replace("\\", "/"))
      folder = rel.parts[0] if len(rel.parts) > 1 else folder_of(rel.stem)
      expected = "1" if FOLDERS.get(folder) == constants.REAL else "0"
      if label_text != expected:
        raise ValueError(f"{official}:{number}: label {label_text} disagrees with folder "
                         f"{folder} (the list uses 1 = real, 0 = fake)")
      out.append(f"{folder}/{rel.stem}")
    return out

  def _list(self, split):
    if split == "test":
      wanted = self.test_list()
    else:
      on_disk = [f"{folder}/{p.stem}" for folder in FOLDERS
                 for p in base.find_videos(self.root / folder, (".mp4",))]
      test = set(self.test_list()) if split == "train" else set()
      wanted = [v for v in on_disk if v not in test]
    records, missing = [], []
    for rel in wanted:
      folder, stem = rel.split("/")
      path = self.root / folder / f"{stem}.mp4"
      if not path.is_file():
        missing.append(f"{rel}.mp4")
        continue
      parts = stem.split("_")
      label = FOLDERS[folder]
      if folder == "Celeb-synthesis":
        target, source = parts[0], parts[1]
        fields = dict(identity=source, source_id=source, target_id=target)
      elif folder == "Celeb-real":
        fields = dict(identity=parts[0], source_id=parts[0])
      else:
        fields = dict(identity=f"youtube-{stem}", source_id=stem)
      records.append(base.VideoRecord(
          video_path=str(path), label=label, video_id=rel, dataset=self.name, split=split,
          category="fake" if label == constants.FAKE else "real", extra={"folder": folder},
          **fields))
    return records, missing
