"""FaceShifter (Li et al., 2020) fakes of the FaceForensics++ sequences.

Where to get it: part of FaceForensics++ (https://github.com/ondyari/FaceForensics); the
download script fetches it with ``-d FaceShifter -c c23 -t videos``.

Layout under ``--root`` (the FaceForensics++ root)::

  manipulated_sequences/FaceShifter/c23/videos/<target>_<source>.mp4   fake (face swap)
  original_sequences/youtube/c23/videos/<id>.mp4                       real

Protocols:
* ``fakeout`` (default, test only): FakeOut's label list (bundled FaceShifter_labels.csv):
  the FF++ test pairs' FaceShifter fakes (139 unique names) and 137 of the 140 FF++ test reals
  (the authors' list leaves out 158, 379 and 550).
* ``ffpp``: the official FF++ split json, any split, like the ``ffpp`` adapter.

Command-line name: ``faceshifter``.
"""
from __future__ import annotations

from typing import Optional

from data import constants
from data.datasets import faceforensics
from data.datasets import splits as split_facts

METHOD = "FaceShifter"
PROTOCOLS = ("fakeout", "ffpp")


class FaceShifterAdapter(faceforensics.FaceForensicsAdapter):
  """FaceShifter fakes and FF++ reals (see the module docstring for the protocols)."""
  name = "faceshifter"
  title = "FaceShifter (FaceForensics++)"
  expected_layout = ("the FaceForensics++ root: manipulated_sequences/FaceShifter/c23/videos/"
                     "000_003.mp4 and original_sequences/youtube/c23/videos/000.mp4")

  def __init__(self, root, compression: str = "c23", protocol: str = "fakeout",
               split_json: Optional[str] = None, audio: str = "none"):
    super().__init__(root, compression=compression, methods=(METHOD,), split_json=split_json,
                     include_real=True, audio=audio)
    if protocol not in PROTOCOLS:
      raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    self.protocol = protocol

  def _list(self, split):
    if self.protocol == "ffpp":
      return super()._list(split)
    if split != "test":
      raise ValueError("FaceShifter protocol 'fakeout' has only the test split (the authors' "
                       "label list); use protocol=ffpp for train/val/all")
    records, missing = [], []
    for stem, label in split_facts.label_list("FaceShifter"):
      if label == constants.REAL:
        path = faceforensics.real_path(self.root, self.compression, stem)
      else:
        path = faceforensics.fake_path(self.root, METHOD, self.compression, stem)
      if not path.is_file():
        missing.append(str(path.relative_to(self.root)))
      elif label == constants.REAL:
        records.append(self.real_record(path, stem, split))
      else:
        records.append(self.fake_record(path, stem, METHOD, split))
    return records, missing
