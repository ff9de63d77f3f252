"""DFDC, the Deepfake Detection Challenge dataset (Dolhansky et al., 2020).

Where to get it: https://ai.meta.com/datasets/dfdc/ (accept the terms, then the AWS links);
the public test set is ``test.zip`` (5000 videos with labels), the training set
``dfdc_train_part_0..49.zip``, the Kaggle public validation set ``validation`` (4000).

Layout under ``--root`` (the folder the zips were extracted into)::

  test/labels.csv                    filename,label  (label 1 = fake, 0 = real)
  test/<id>.mp4  or  test/videos/<id>.mp4
  test/metadata.json                 accepted instead of labels.csv: {"<id>.mp4": {"is_fake": 0|1}}
  train/dfdc_train_part_<N>/metadata.json and <id>.mp4   (or dfdc_train_part_<N>/ at the root)
      metadata.json: {"<id>.mp4": {"label": "FAKE"|"REAL", "split": "train", "original": ...}}
  validation/labels.csv and <id>.mp4 (or validation/videos/)

Subsets of the test split (FakeOut Sec. 4, Table 7):
* ``subset=filtered``: FakeOut's single-person subset, the ids of the bundled
  DFDC_filtered_test.txt (3215 ids in the bundled file) or of ``filtered_list``.
* dog-mask distractors: ids from a user-given ``dog_mask_list`` (FakeOut: 215 videos), labelled
  REAL as FakeOut does (the DFDC label is kept in ``extra['dfdc_label']``);
  ``dog_mask=include|exclude|only`` gives the "with" and "without" rows.

Command-line name: ``dfdc``.
"""
from __future__ import annotations

import csv
import json
import logging
import pathlib
from typing import Optional

from data import constants
from data.datasets import base
from data.datasets import splits as split_facts

log = logging.getLogger(__name__)

SPLIT_DIRS = {"test": "test", "validation": "validation"}
TRAIN_PART_PREFIX = "dfdc_train_part_"


def _parse_label(value, where: str) -> int:
  text = str(value).strip().upper()
  if text in ("1", "FAKE", "TRUE"):
    return constants.FAKE
  if text in ("0", "REAL", "FALSE"):
    return constants.REAL
  raise ValueError(f"{where}: unknown label {value!r} (expected 0/1 or REAL/FAKE)")


class DFDCAdapter(base.DatasetAdapter):
  """DFDC public test, validation and training parts.

  Args:
    root: the folder holding test/ (and train/ or dfdc_train_part_N/, validation/).
    subset: 'full' (default) or 'filtered' (FakeOut's single-person test subset).
    filtered_list: a list file of ids for 'filtered' instead of the bundled one.
    dog_mask_list: a list file of the dog-mask distractor ids.
    dog_mask: 'include' (default), 'exclude' or 'only' the dog-mask distractors.
  """
  name = "dfdc"
  title = "DFDC"
  splits = ("test", "validation", "train")
  expected_layout = ("test/labels.csv with test/<id>.mp4 (DFDC public test set), and/or "
                     "train/dfdc_train_part_0/metadata.json")

  def __init__(self, root: base.PathLike, subset: str = "full",
               filtered_list: Optional[str] = None, dog_mask_list: Optional[str] = None,
               dog_mask: str = "include"):
    super().__init__(root)
    if subset not in split_facts.DFDC_SUBSETS:
      raise ValueError(f"subset must be one of {split_facts.DFDC_SUBSETS}, got {subset!r}")
    if dog_mask not in split_facts.DFDC_DOG_MASK_MODES:
      raise ValueError(f"dog_mask must be one of {split_facts.DFDC_DOG_MASK_MODES}, got "
                       f"{dog_mask!r}")
    if dog_mask != "include" and not dog_mask_list:
      raise ValueError(f"dog_mask={dog_mask} needs dog_mask_list=<file with the distractor ids>")
    self.subset = subset
    self.filtered_list = filtered_list
    self.dog_mask_list = dog_mask_list
    self.dog_mask = dog_mask

  def _train_parts(self) -> list[pathlib.Path]:
    parts = []
    for parent in (self.root / "train", self.root):
      if parent.is_dir():
        parts += [p for p in parent.iterdir()
                  if p.is_dir() and p.name.startswith(TRAIN_PART_PREFIX)]

    def number(part: pathlib.Path) -> tuple[int, str]:
      suffix = part.name[len(TRAIN_PART_PREFIX):]
      return (int(suffix) if suffix.isdigit() else -1, part.name)
    return sorted(parts, key=number)

  def _check_root(self):
    has_split_dir = any((self.root / d).is_dir() for d in SPLIT_DIRS.values())
    if not has_split_dir and not self._train_parts():
      raise self.layout_error("no test/, validation/ or dfdc_train_part_*/ folder")

  # -- label files --------------------------------------------------------------------------

  def _split_labels(self, folder: pathlib.Path) -> dict[str, int]:
    labels_csv, metadata = folder / "labels.csv", folder / "metadata.json"
    if labels_csv.is_file():
      with open(labels_csv, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not {"filename", "label"} <= set(reader.fieldnames or ()):
          raise base.DatasetLayoutError(f"{labels_csv}: expected columns filename,label; got "
                                        f"{reader.fieldnames}")
        return {row["filename"].strip().rsplit(".", 1)[0]:
                _parse_label(row["label"], str(labels_csv)) for row in reader}
    if metadata.is_file():
      return {name.rsplit(".", 1)[0]: self._metadata_label(entry, metadata)
              for name, entry in json.loads(metadata.read_text("utf-8")).items()}
    raise base.DatasetLayoutError(f"{folder} has neither labels.csv nor metadata.json (the DFDC "
                                  "label files); cannot label its videos")

  @staticmethod
  def _metadata_label(entry: dict, where: pathlib.Path) -> int:
    if "is_fake" in entry:
      return _parse_label(entry["is_fake"], str(where))
    if "label" in entry:
      return _parse_label(entry["label"], str(where))
    raise ValueError(f"{where}: an entry has neither 'is_fake' nor 'label': {entry}")

  @staticmethod
  def _video_path(folder: pathlib.Path, video_id: str) -> pathlib.Path:
    for candidate in (folder / f"{video_id}.mp4", folder / "videos" / f"{video_id}.mp4"):
      if candidate.is_file():
        return candidate
    return folder / f"{video_id}.mp4"

  # -- listing ------------------------------------------------------------------------------

  def _list(self, split):
    if split == "train":
      return self._list_train()
    folder = self.root / SPLIT_DIRS[split]
    if not folder.is_dir():
      raise self.layout_error(f"no {SPLIT_DIRS[split]}/ folder for split {split!r}")
    labels = self._split_labels(folder)
    ids = sorted(labels)
    if self.subset == "filtered":
      keep = (set(base.read_id_list(self.filtered_list, "DFDC filtered"))
              if self.filtered_list else split_facts.dfdc_filtered_ids())
      absent = keep - set(labels)
      if absent:
        log.warning("DFDC: %d ids of the filtered list are not in %s's labels (e.g. %s)",
                    len(absent), split, ", ".join(sorted(absent)[:5]))
      ids = [i for i in ids if i in keep]
    dog = set(base.read_id_list(self.dog_mask_list, "DFDC dog-mask")) if self.dog_mask_list \
        else set()
    if self.dog_mask == "exclude":
      ids = [i for i in ids if i not in dog]
    elif self.dog_mask == "only":
      ids = [i for i in ids if i in dog]
    records, missing = [], []
    for video_id in ids:
      path = self._video_path(folder, video_id)
      if not path.is_file():
        missing.append(str(path.relative_to(self.root)))
        continue
      is_dog = video_id in dog
      extra = {"subset": self.subset, "dfdc_label": str(labels[video_id]),
               "dog_mask": "1" if is_dog else "0"}
      records.append(base.VideoRecord(
          video_path=str(path), label=constants.REAL if is_dog else labels[video_id],
          video_id=video_id, dataset=self.name, split=split,
          category="dog_mask" if is_dog else
          ("fake" if labels[video_id] == constants.FAKE else "real"),
          extra=extra))
    return records, missing

  def _list_train(self):
    parts = self._train_parts()
    if not parts:
      raise self.layout_error("no dfdc_train_part_*/ folders (under train/ or the root)")
    records, missing = [], []
    for part in parts:
      metadata = part / "metadata.json"
      if not metadata.is_file():
        log.warning("DFDC: %s has no metadata.json; its videos cannot be labelled, skipped",
                    part)
        missing.append(str(metadata.relative_to(self.root)))
        continue
      for name, entry in sorted(json.loads(metadata.read_text("utf-8")).items()):
        video_id = name.rsplit(".", 1)[0]
        path = part / name
        if not path.is_file():
          missing.append(str(path.relative_to(self.root)))
          continue
        label = self._metadata_label(entry, metadata)
        original = (entry.get("original") or "").rsplit(".", 1)[0]
        records.append(base.VideoRecord(
            video_path=str(path), label=label, video_id=video_id, dataset=self.name,
            split="train", category="fake" if label == constants.FAKE else "real",
            source_id=original if label == constants.FAKE else video_id,
            extra={"part": part.name, "dfdc_label": str(label)}))
    return records, missing
