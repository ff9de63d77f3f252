"""KoDF (Kwon et al., 2021): Korean DeepFake Detection Dataset, real, synthesized and
adversarially attacked clips of 403 consenting subjects.

Where to get it: the form at https://deepbrainai-research.github.io/kodf (international
release, unpacked as ``kodf_release/``) or AI-Hub dataset 8005 (Korean release).

Layouts under ``--root`` (a clip's class comes from the folder it is in; KoDF's metadata CSVs,
when found anywhere under the root, only add the method, target video and gender)::

  international release                      AI-Hub release
  original_videos/<subject>/<clip>.mp4       <...>/train_원본/... or [원천][원본].../   real
  synthesized_videos/<method>/.../<clip>.mp4 <...>/train_변조/... or [원천][변조].../   fake
  <...adversarial...>/.../<clip>.mp4         adversarial examples (see below)
  *.csv (metadata)                           라벨링데이터/.../변조영상_training_메타데이터.csv

Methods (``category``): dffs (FaceSwap), dfl (DeepFaceLab), fsgan, fo (FOMM), atfhp,
wav2lip / audio_driven.

Adversarial subset (split ``adversarial``): the clips under a folder whose name contains
"adversarial". Their label comes from an inner folder (original / real / 원본 = real;
synthesized / fake / 변조 = fake) or from a metadata CSV with a label column; a clip whose
class cannot be told is skipped with a warning, never guessed. The inconsistency paper reports
AUC over :func:`adversarial_draws` (1000 draws of 276 real + 544 fake).

Honest limit: this layout was assembled from the paper and public code that reads KoDF, not
checked against a copy of the release; a root that does not match says what it found.

Splits: ``all``, ``adversarial``, ``train`` and ``validation`` (AI-Hub folder names carrying
train/Training or valid/Validation).

Command-line name: ``kodf``.
"""
from __future__ import annotations

import csv
import logging
import pathlib
import random
from typing import Optional, Sequence

from data import constants
from data.datasets import base
from data.datasets import splits as split_facts

log = logging.getLogger(__name__)

METHODS = ("dffs", "dfl", "fsgan", "fo", "atfhp", "wav2lip", "audio_driven", "audio-driven")
_REAL_WORDS = ("original", "real", "원본")
_FAKE_WORDS = ("synthesized", "synthesised", "fake", "변조")
_ADVERSARIAL_WORD = "adversarial"
# Metadata columns (Korean release, then English guesses) -> our field.
_ID_COLUMNS = ("영상ID", "video_id", "filename", "file", "name")
_TARGET_COLUMNS = ("타겟영상", "target_video", "target")
_METHOD_COLUMNS = ("변조모델", "model", "method")
_GENDER_COLUMNS = ("인물성별", "gender")
_LABEL_COLUMNS = ("label", "라벨", "is_fake")


def _first(row: dict, columns: Sequence[str]) -> str:
  for column in columns:
    if row.get(column):
      return row[column].strip()
  return ""


def _label_word(parts: Sequence[str]) -> Optional[int]:
  """REAL/FAKE from folder names (the innermost telling one wins), or None."""
  for part in reversed(parts):
    low = part.lower()
    if any(w in low for w in _FAKE_WORDS):
      return constants.FAKE
    if any(w in low for w in _REAL_WORDS):
      return constants.REAL
  return None


def _method_of(parts: Sequence[str]) -> str:
  for part in parts:
    low = part.lower()
    if low in METHODS:
      return low
    for method in METHODS:
      if f"_{method}" in low or low.startswith(f"{method}_"):
        return method
  return ""


def adversarial_draws(records: Sequence[base.VideoRecord],
                      n_draws: int = split_facts.KODF_DRAWS,
                      n_real: int = split_facts.KODF_DRAW_REAL,
                      n_fake: int = split_facts.KODF_DRAW_FAKE,
                      seed: int = 0) -> list[list[str]]:
  """Video ids of ``n_draws`` random draws of n_real real + n_fake fake records (no
  replacement within a draw), the inconsistency paper's KoDF protocol."""
  real = sorted(r.video_id for r in records if r.label == constants.REAL)
  fake = sorted(r.video_id for r in records if r.label == constants.FAKE)
  if len(real) < n_real or len(fake) < n_fake:
    raise ValueError(f"a draw needs {n_real} real and {n_fake} fake videos; the records have "
                     f"{len(real)} real and {len(fake)} fake")
  rng = random.Random(seed)
  return [rng.sample(real, n_real) + rng.sample(fake, n_fake) for _ in range(n_draws)]


class KoDFAdapter(base.DatasetAdapter):
  """KoDF real, synthesized and adversarial clips (see the module docstring).

  Args:
    root: kodf_release/ (international) or the AI-Hub download folder.
    methods: keep only these synthesis methods (comma separated); default all.
  """
  name = "kodf"
  title = "KoDF"
  splits = ("all", "adversarial", "train", "validation")
  expected_layout = ("kodf_release/ with original_videos/ and synthesized_videos/<method>/ "
                     "(or the AI-Hub folders with 원본 / 변조 in their names)")

  def __init__(self, root: base.PathLike, methods: tuple[str, ...] = ()):
    super().__init__(root)
    self.methods = base.split_csv_option(methods)

  def _folder_names(self, depth: int = 3) -> list[str]:
    """Folder names down to ``depth`` levels below the root."""
    names, level = [], [self.root]
    for _ in range(depth):
      level = [p for folder in level for p in folder.iterdir() if p.is_dir()]
      names += [p.name for p in level]
    return names

  def _check_root(self):
    telling = [n for n in self._folder_names()
               if _label_word([n]) is not None or _ADVERSARIAL_WORD in n.lower()]
    if not telling:
      raise self.layout_error("no folder named like original_videos / synthesized_videos / "
                              "원본 / 변조 / adversarial")

  def _metadata(self) -> dict[str, dict]:
    """Metadata rows by clip stem, from every CSV under the root."""
    rows = {}
    for path in sorted(self.root.rglob("*.csv")):
      try:
        with open(path, newline="", encoding="utf-8-sig") as f:
          for row in csv.DictReader(f):
            key = _first(row, _ID_COLUMNS)
            if key:
              rows.setdefault(pathlib.PurePosixPath(key).name.split(".")[0], row)
      except (UnicodeDecodeError, csv.Error) as e:
        log.warning("KoDF: could not read metadata %s: %s", path, e)
    return rows

  def _in_split(self, split: str, parts: Sequence[str]) -> bool:
    low = [p.lower() for p in parts]
    adversarial = any(_ADVERSARIAL_WORD in p for p in low)
    if split == "adversarial":
      return adversarial
    if split == "all":
      return True
    words = ("valid",) if split == "validation" else ("train",)
    return any(any(w in p for w in words) for p in low)

  def _list(self, split):
    metadata = self._metadata()
    records, unlabelled = [], []
    for path in base.find_videos(self.root, (".mp4",), recursive=True):
      parts = path.relative_to(self.root).parts[:-1]
      if not self._in_split(split, parts):
        continue
      adversarial = any(_ADVERSARIAL_WORD in p.lower() for p in parts)
      row = metadata.get(path.stem, {})
      label = _label_word(parts)
      label_text = _first(row, _LABEL_COLUMNS).upper()
      if label is None and label_text:
        label = constants.FAKE if label_text in ("1", "FAKE", "TRUE") else constants.REAL
      if label is None:
        unlabelled.append(str(path.relative_to(self.root)))
        continue
      method = _method_of(parts) or _first(row, _METHOD_COLUMNS).lower()
      if label == constants.FAKE and self.methods and method not in self.methods:
        continue
      target = pathlib.PurePosixPath(_first(row, _TARGET_COLUMNS)).name.split(".")[0]
      identity = parts[-1] if label == constants.REAL and parts else ""
      records.append(base.VideoRecord(
          video_path=str(path), label=label,
          video_id=path.relative_to(self.root).with_suffix("").as_posix(), dataset=self.name,
          split=split, category=(method or "fake") if label == constants.FAKE else "real",
          method=method if label == constants.FAKE else "", identity=identity,
          target_id=target,
          extra={"adversarial": "1" if adversarial else "0",
                 "gender": _first(row, _GENDER_COLUMNS)}))
    if unlabelled:
      log.warning("KoDF/%s: %d clips whose class cannot be told from their folders or the "
                  "metadata were skipped (e.g. %s)", split, len(unlabelled),
                  ", ".join(unlabelled[:5]))
    return records, []
