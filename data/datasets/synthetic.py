"""The synthetic audio-visual deepfake set written by ``python -m data.synth``.

The generator writes the real layouts, so the ``fakeavceleb`` and ``ffpp`` adapters read its
output unchanged. This alias only adds two conveniences:

* it picks the layout by itself: ``meta_data.csv`` at the root -> FakeAVCeleb layout,
  ``original_sequences/`` or ``manipulated_sequences/`` -> FaceForensics++ layout (``layout``
  forces one);
* if the generator's sidecar ``synthetic_ground_truth.csv`` is at the root, each record gets its
  row's columns as ``extra['gt.<column>']`` (matched on a path / file name / video id column),
  and a ``split`` column there, when present, defines the train/val/test splits.

Without a sidecar split, the FakeAVCeleb layout uses the adapter's seeded identity split with
a fifth of the identities (at least one) in test unless ``n_test_ids`` is given.

Command-line name: ``synthetic``.
"""
from __future__ import annotations

import csv
import logging
import pathlib
from typing import Optional

from data.datasets import base
from data.datasets import faceforensics
from data.datasets import fakeavceleb

log = logging.getLogger(__name__)

SIDECAR = "synthetic_ground_truth.csv"
LAYOUTS = ("auto", "fakeavceleb", "ffpp")
_KEY_COLUMNS = ("relative_path", "path", "video_path", "file", "filename", "video_id", "video")


def _norm(text: str) -> str:
  return pathlib.PurePosixPath(text.replace("\\", "/").strip("/")).with_suffix("").as_posix()


class SyntheticAdapter(base.DatasetAdapter):
  """The synthetic set in either layout (see the module docstring).

  Args:
    root: the generator's --out folder.
    layout: auto (default), fakeavceleb or ffpp.
    n_test_ids / seed / test_ids: FakeAVCeleb-layout identity split when the sidecar has none.
    compression / methods / split_json: FF++-layout options (see the ffpp adapter).
  """
  name = "synthetic"
  title = "synthetic set (data.synth)"
  splits = ("train", "val", "test", "all")
  expected_layout = ("the output folder of python -m data.synth: meta_data.csv (FakeAVCeleb "
                     "layout) or original_sequences/ + manipulated_sequences/ (FF++ layout)")

  def __init__(self, root: base.PathLike, layout: str = "auto", n_test_ids: int = 0,
               seed: int = 0, test_ids: Optional[str] = None, compression: str = "c23",
               methods: tuple[str, ...] = ("all",), split_json: Optional[str] = None):
    super().__init__(root)
    if layout not in LAYOUTS:
      raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    self.layout = layout
    self.n_test_ids, self.seed, self.test_ids = n_test_ids, seed, test_ids
    self.compression, self.methods, self.split_json = compression, methods, split_json

  def resolved_layout(self) -> str:
    if self.layout != "auto":
      return self.layout
    if (self.root / fakeavceleb.META_FILE).is_file():
      return "fakeavceleb"
    if ((self.root / faceforensics.ORIGINAL_DIR[0]).is_dir() or
        (self.root / faceforensics.MANIPULATED_DIR).is_dir()):
      return "ffpp"
    raise self.layout_error(f"neither {fakeavceleb.META_FILE} nor original_sequences/ / "
                            "manipulated_sequences/")

  def delegate(self) -> base.DatasetAdapter:
    """The real-layout adapter that does the listing."""
    if self.resolved_layout() == "ffpp":
      return faceforensics.FaceForensicsAdapter(
          self.root, compression=self.compression, methods=self.methods,
          split_json=self.split_json, audio="probe")
    n_test = self.n_test_ids
    if not n_test and not self.test_ids:
      sources = {r["source"] for r in
                 fakeavceleb.read_metadata(self.root / fakeavceleb.META_FILE)}
      n_test = max(1, len(sources) // 5)
    return fakeavceleb.FakeAVCelebAdapter(self.root, test_ids=self.test_ids,
                                          n_test_ids=max(1, n_test), seed=self.seed)

  def _check_root(self):
    self.delegate().check_root()

  def sidecar(self) -> Optional[list[dict[str, str]]]:
    path = self.root / SIDECAR
    if not path.is_file():
      return None
    with open(path, newline="", encoding="utf-8-sig") as f:
      return list(csv.DictReader(f))

  def _list(self, split):
    delegate = self.delegate()
    rows = self.sidecar()
    split_in_sidecar = bool(rows) and "split" in rows[0]
    if split_in_sidecar or split not in delegate.splits:
      if not split_in_sidecar and split != "all":
        raise ValueError(f"split {split!r}: the {self.resolved_layout()} layout has splits "
                         f"{delegate.splits} and {SIDECAR} has no split column")
      inner_split = "all"
    else:
      inner_split = split
    records, missing = delegate._list(inner_split)  # pylint: disable=protected-access
    records = [r.replace(dataset=self.name, split=split) for r in records]
    if rows:
      records = self._merge(records, rows)
      if split_in_sidecar and split != "all":
        records = [r for r in records if r.extra.get("gt.split") == split]
    return records, missing

  def _merge(self, records: list[base.VideoRecord],
             rows: list[dict[str, str]]) -> list[base.VideoRecord]:
    key = next((c for c in _KEY_COLUMNS if c in rows[0]), None)
    if key is None:
      log.warning("%s has none of the key columns %s; ground truth not attached", SIDECAR,
                  _KEY_COLUMNS)
      return records
    by_key, by_stem = {}, {}
    for row in rows:
      norm = _norm(row[key])
      by_key[norm] = row
      by_stem.setdefault(pathlib.PurePosixPath(norm).name, []).append(row)
    merged, unmatched = [], 0
    for record in records:
      rel = _norm(pathlib.Path(record.video_path).relative_to(self.root).as_posix())
      row = by_key.get(rel) or by_key.get(_norm(record.video_id))
      if row is None:
        candidates = by_stem.get(pathlib.PurePosixPath(rel).name, [])
        row = candidates[0] if len(candidates) == 1 else None
      if row is None:
        unmatched += 1
        merged.append(record)
        continue
      extra = dict(record.extra)
      extra.update({f"gt.{k}": v for k, v in row.items() if k and v is not None})
      merged.append(record.replace(extra=extra))
    if unmatched:
      log.warning("%s: %d videos have no row in %s", self.name, unmatched, SIDECAR)
    return merged
