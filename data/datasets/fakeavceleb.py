"""FakeAVCeleb v1.2 (Khalid et al., 2021): audio-visual deepfakes of VoxCeleb2 celebrities.

Where to get it: the request form at https://github.com/DASH-Lab/FakeAVCeleb; the download
script unpacks ``FakeAVCeleb_v1.2/``, which is the root.

Layout under ``--root``::

  meta_data.csv
  RealVideo-RealAudio/<race>/<gender>/<id>/<clip>.mp4      real (500 videos)
  RealVideo-FakeAudio/<race>/<gender>/<id>/<clip>.mp4      fake audio (rtvc voice clone)
  FakeVideo-RealAudio/<race>/<gender>/<id>/<clip>.mp4      fake video (faceswap, fsgan, wav2lip)
  FakeVideo-FakeAudio/<race>/<gender>/<id>/<clip>.mp4      both (faceswap-/fsgan-wav2lip, wav2lip)

meta_data.csv: header ``source,target1,target2,method,category,type,race,gender,path,`` but
ten values per row: the ninth is the file name and the tenth the folder, written with a leading
``FakeAVCeleb/`` (e.g. ``FakeAVCeleb/RealVideo-RealAudio/African/men/id00076``). ``category`` is
A (RVRA), B (RVFA), C (FVRA), D (FVFA). About 20 files are listed twice with different
methods; the first row wins (a warning says how many).

Categories (``VideoRecord.category``) as the inconsistency paper names them: RVRA (real), RVFA,
FVRA-WL, FVFA-FS, FVFA-GAN, FVFA-WL, plus FVRA-FS and FVRA-GAN, which its table leaves out.

Splits by source identity (the ``source`` column, a VoxCeleb2 id):
* ``test``: the videos of the test identities: those of ``test_ids`` (a list file, e.g.
  FakeOut's 120 source ids) or, without it, ``n_test_ids`` (default 120) identities drawn with
  ``seed`` from the sorted source ids.
* ``train``: the other identities' videos, minus any whose target ids are test identities.
* ``all``: everything.

Command-line name: ``fakeavceleb``.
"""
from __future__ import annotations

import csv
import logging
import pathlib
import random
from typing import Optional

from data import constants
from data.datasets import base
from data.datasets import splits as split_facts

log = logging.getLogger(__name__)

META_FILE = "meta_data.csv"
TYPES = ("RealVideo-RealAudio", "RealVideo-FakeAudio", "FakeVideo-RealAudio",
         "FakeVideo-FakeAudio")
REAL_TYPE = TYPES[0]
_TYPE_ABBREV = {"RealVideo-RealAudio": "RVRA", "RealVideo-FakeAudio": "RVFA",
                "FakeVideo-RealAudio": "FVRA", "FakeVideo-FakeAudio": "FVFA"}
_NAMED_COLUMNS = ("source", "target1", "target2", "method", "category", "type", "race",
                  "gender")


def category_of(type_name: str, method: str) -> str:
  """FakeAVCeleb (type folder, method) -> category name, e.g. FVFA-GAN."""
  known = split_facts.FAKEAVCELEB_CATEGORIES.get((type_name, method))
  if known:
    return known
  return f"{_TYPE_ABBREV.get(type_name, type_name)}-{method}"


def read_metadata(path: pathlib.Path) -> list[dict[str, str]]:
  """meta_data.csv rows as dicts with the eight named columns plus 'filename' and 'folder'."""
  rows = []
  with open(path, newline="", encoding="utf-8-sig") as f:
    reader = csv.reader(f)
    header = [h.strip() for h in next(reader, [])]
    if header[:len(_NAMED_COLUMNS)] != list(_NAMED_COLUMNS):
      raise base.DatasetLayoutError(
          f"{path}: expected the FakeAVCeleb header {','.join(_NAMED_COLUMNS)},path,...; got "
          f"{','.join(header)}")
    for line, row in enumerate(reader, start=2):
      row = [cell.strip() for cell in row]
      if not any(row):
        continue
      if len(row) < len(_NAMED_COLUMNS) + 1:
        raise base.DatasetLayoutError(f"{path}:{line}: too few values: {row}")
      entry = dict(zip(_NAMED_COLUMNS, row))
      rest = [cell for cell in row[len(_NAMED_COLUMNS):] if cell]
      files = [c for c in rest if c.lower().endswith(base.VIDEO_SUFFIXES)]
      if not files:
        raise base.DatasetLayoutError(f"{path}:{line}: no video file name in {rest}")
      entry["filename"] = files[0]
      folders = [c for c in rest if c != files[0]]
      entry["folder"] = folders[0] if folders else ""
      rows.append(entry)
  return rows


def relative_folder(entry: dict[str, str]) -> pathlib.PurePosixPath:
  """The row's folder relative to the root (drops the leading 'FakeAVCeleb/')."""
  folder = entry["folder"].replace("\\", "/").strip("/")
  parts = pathlib.PurePosixPath(folder).parts if folder else ()
  if parts and parts[0] in TYPES:
    return pathlib.PurePosixPath(*parts)
  if len(parts) > 1 and parts[1] in TYPES:
    return pathlib.PurePosixPath(*parts[1:])
  # No usable folder column: rebuild it from the other columns.
  return pathlib.PurePosixPath(entry["type"], entry["race"], entry["gender"], entry["source"])


def identity_ids(value: str) -> bool:
  return value.startswith("id") and value[2:].isdigit()


class FakeAVCelebAdapter(base.DatasetAdapter):
  """FakeAVCeleb v1.2 from meta_data.csv (see the module docstring).

  Args:
    root: FakeAVCeleb_v1.2/ (holds meta_data.csv and the four type folders).
    test_ids: a list file of source ids forming the test split (e.g. FakeOut's 120).
    n_test_ids: without test_ids, how many source ids the seeded draw puts in test.
    seed: seed of that draw.
    categories: keep only these categories (comma separated, e.g. RVRA,RVFA); default all.
    audio: has_audio hint: 'assume' (default; every FakeAVCeleb video has audio), 'probe'.
  """
  name = "fakeavceleb"
  title = "FakeAVCeleb v1.2"
  splits = ("test", "train", "all")
  expected_layout = ("FakeAVCeleb_v1.2/ with meta_data.csv and RealVideo-RealAudio/<race>/"
                     "<gender>/<id>/<clip>.mp4 (and the three fake type folders)")

  def __init__(self, root: base.PathLike, test_ids: Optional[str] = None,
               n_test_ids: int = split_facts.FAKEAVCELEB_FAKEOUT_TEST_IDENTITIES, seed: int = 0,
               categories: tuple[str, ...] = (), audio: str = "assume"):
    super().__init__(root)
    if n_test_ids < 1:
      raise ValueError(f"n_test_ids must be at least 1, got {n_test_ids}")
    self.test_ids = test_ids
    self.n_test_ids = n_test_ids
    self.seed = seed
    self.categories = base.split_csv_option(categories)
    self.audio = audio

  def _check_root(self):
    if (self.root / META_FILE).is_file():
      return
    nested = [p for p in self.root.iterdir() if p.is_dir() and (p / META_FILE).is_file()]
    hint = f" (did you mean {str(nested[0])!r}?)" if nested else ""
    raise self.layout_error(f"no {META_FILE}{hint}")

  def test_identities(self, all_sources: set[str]) -> tuple[set[str], str]:
    """(test source ids, a description of how they were chosen)."""
    if self.test_ids:
      ids = set(base.read_id_list(self.test_ids, "FakeAVCeleb test identity"))
      unknown = ids - all_sources
      if unknown:
        log.warning("FakeAVCeleb: %d test ids are not sources in %s (e.g. %s)", len(unknown),
                    META_FILE, ", ".join(sorted(unknown)[:5]))
      return ids, f"list:{pathlib.Path(self.test_ids).name}"
    if self.n_test_ids > len(all_sources):
      raise ValueError(f"n_test_ids={self.n_test_ids} but {META_FILE} has only "
                       f"{len(all_sources)} source identities")
    ids = set(random.Random(self.seed).sample(sorted(all_sources), self.n_test_ids))
    return ids, f"seeded:{self.seed}:{self.n_test_ids}"

  def _list(self, split):
    rows = read_metadata(self.root / META_FILE)
    sources = {r["source"] for r in rows}
    if split == "all" and not self.test_ids and self.n_test_ids > len(sources):
      test_ids, how = set(), ""   # 'all' needs no identity split
    else:
      test_ids, how = self.test_identities(sources)
    records, missing, unknown_categories, leaked = [], [], set(), 0
    for entry in rows:
      category = category_of(entry["type"], entry["method"])
      if (entry["type"], entry["method"]) not in split_facts.FAKEAVCELEB_CATEGORIES:
        unknown_categories.add(category)
      if self.categories and category not in self.categories:
        continue
      targets = {entry["target1"], entry["target2"]}
      in_test = entry["source"] in test_ids
      if split == "test" and not in_test:
        continue
      if split == "train":
        if in_test:
          continue
        if any(t in test_ids for t in targets if identity_ids(t)):
          leaked += 1
          continue
      rel = relative_folder(entry) / entry["filename"]
      path = self.root / rel
      if not path.is_file():
        missing.append(rel.as_posix())
        continue
      label = constants.REAL if entry["type"] == REAL_TYPE else constants.FAKE
      extra = {"type": entry["type"], "fakeavceleb_category": entry["category"],
               "race": entry["race"], "gender": entry["gender"], "target2": entry["target2"],
               "video_fake": "1" if entry["type"].startswith("FakeVideo") else "0",
               "audio_fake": "1" if entry["type"].endswith("FakeAudio") else "0"}
      if how:
        extra.update(identity_split=how, test_identity="1" if in_test else "0")
      target = entry["target1"] if entry["target1"] not in ("", "-") else ""
      records.append(base.VideoRecord(
          video_path=str(path), label=label, video_id=rel.with_suffix("").as_posix(),
          dataset=self.name, split=split,
          category=category, method="" if label == constants.REAL else entry["method"],
          identity=entry["source"], source_id=entry["source"],
          target_id=target, has_audio=base.audio_hint(self.audio, path), extra=extra))
    if unknown_categories:
      log.warning("FakeAVCeleb: (type, method) pairs outside the known categories: %s",
                  ", ".join(sorted(unknown_categories)))
    if leaked:
      log.info("FakeAVCeleb/train: %d videos left out because a target id is a test identity",
               leaked)
    return records, missing
