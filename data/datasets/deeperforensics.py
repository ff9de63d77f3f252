"""DeeperForensics-1.0 (Jiang et al., 2020): DF-VAE face swaps onto the FaceForensics++ videos.

Where to get it: the form at https://github.com/EndlessSora/DeeperForensics-1.0 (dataset/);
after unzipping (``bash unzip.sh``) the root is ``DeeperForensics-1.0/``. The real videos are
NOT part of it: they are the FF++ c23 originals (the "target videos"), so pass the FF++ root as
``ffpp_root``.

Layout under ``--root``::

  manipulated_videos/<variant>/<target_id>_<actor_id>.mp4       fake, e.g. 480_W133.mp4
  lists/splits/{train,val,test}.txt                             official split (fake names)
  lists/manipulated_videos_distortions_meta/manipulated_videos_<variant>_meta.txt  (optional)
  source_videos/<actor_id>/...                                  actors' recordings (not used)

``<variant>`` is ``end_to_end`` (default, the 1000 raw swaps) or one of the perturbed copies
(``end_to_end_level_1..5``, ``end_to_end_random_level``, ``end_to_end_mix_2..4_distortions``,
``reenact_postprocess``). ``<target_id>`` is the FF++ sequence whose video is kept; the actor's
face is swapped onto it (so the FF++ target's audio fits: enrichment uses ``target_id``).

Protocols (option ``protocol``):
* ``fakeout`` (default, test only): FakeOut's bundled label list: the fakes of the 140 FF++ test
  ids (139 unique names) and 137 FF++ test reals, i.e. DeeperForensics "follows the FF++ test
  split".
* ``ffpp``: fakes whose target is in the FF++ split json, and the FF++ reals of that split.
* ``official``: DeeperForensics' own lists/splits/<split>.txt and the reals of their targets.

Command-line name: ``deeperforensics``.
"""
from __future__ import annotations

import logging
import pathlib
from typing import Optional

from data import constants
from data.datasets import base
from data.datasets import faceforensics
from data.datasets import splits as split_facts

log = logging.getLogger(__name__)

PROTOCOLS = ("fakeout", "ffpp", "official")
METHOD = "DeeperForensics"
GENERATOR = "DF-VAE"


class DeeperForensicsAdapter(base.DatasetAdapter):
  """DeeperForensics-1.0 fakes plus their FF++ reals.

  Args:
    root: the DeeperForensics-1.0 folder (with manipulated_videos/).
    ffpp_root: the FaceForensics++ root, for the real (target) videos; without it only fakes.
    variant: the manipulated_videos/ subfolder (default end_to_end).
    protocol: fakeout (default), ffpp or official (see the module docstring).
    compression: FF++ compression of the real videos (c23 as FakeOut).
    audio: has_audio hint ('none': the releases are silent; 'probe'; 'assume').
  """
  name = "deeperforensics"
  title = "DeeperForensics-1.0"
  splits = ("train", "val", "test")
  expected_layout = ("DeeperForensics-1.0/ with manipulated_videos/end_to_end/000_M101.mp4 "
                     "and lists/splits/test.txt (the unzipped release)")

  def __init__(self, root: base.PathLike, ffpp_root: Optional[str] = None,
               variant: str = "end_to_end", protocol: str = "fakeout",
               compression: str = "c23", audio: str = "none"):
    super().__init__(root)
    if protocol not in PROTOCOLS:
      raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    self.ffpp_root = pathlib.Path(ffpp_root).expanduser().resolve() if ffpp_root else None
    self.variant = variant
    self.protocol = protocol
    self.compression = split_facts.FFPP_COMPRESSIONS.get(compression, compression)
    self.audio = audio

  def _check_root(self):
    if not (self.root / "manipulated_videos").is_dir():
      raise self.layout_error("no manipulated_videos/ folder")
    if not (self.root / "manipulated_videos" / self.variant).is_dir():
      variants = sorted(p.name for p in (self.root / "manipulated_videos").iterdir()
                        if p.is_dir())
      raise self.layout_error(f"no manipulated_videos/{self.variant}/ (variants found: "
                              f"{', '.join(variants) or 'none'})")
    if self.ffpp_root is not None:
      faceforensics.check_ffpp_root(self.ffpp_root, "FaceForensics++ (ffpp_root)")

  def _expected(self, split: str) -> tuple[list[str], list[str]]:
    """(real FF++ ids, fake names) the protocol lists for ``split``."""
    if self.protocol == "fakeout":
      if split != "test":
        raise ValueError("DeeperForensics protocol 'fakeout' has only the test split; use "
                         "protocol=ffpp or protocol=official for train/val")
      labels = split_facts.label_list("DeeperForensics")
      return ([s for s, lab in labels if lab == constants.REAL],
              [s for s, lab in labels if lab == constants.FAKE])
    if self.protocol == "ffpp":
      ids = split_facts.ids_of_pairs(split_facts.ffpp_split_pairs(split))
      names = [p.stem for p in base.find_videos(self._fake_dir(), (".mp4",))
               if p.stem.split("_")[0] in ids]
      return sorted(ids), names
    split_file = self.root / "lists" / "splits" / f"{split}.txt"
    if not split_file.is_file():
      raise FileNotFoundError(f"protocol 'official' needs {split_file} (lists/ of the release)")
    names = base.read_id_list(split_file, "DeeperForensics split")
    return sorted({n.split("_")[0] for n in names}), names

  def _fake_dir(self) -> pathlib.Path:
    return self.root / "manipulated_videos" / self.variant

  def _distortions(self) -> dict[str, str]:
    meta = (self.root / "lists" / "manipulated_videos_distortions_meta" /
            f"manipulated_videos_{self.variant}_meta.txt")
    if not meta.is_file():
      return {}
    out = {}
    for line in meta.read_text(encoding="utf-8").splitlines():
      parts = line.split()
      if parts:
        out[pathlib.PurePosixPath(parts[0]).stem] = " ".join(parts[1:])
    return out

  def _list(self, split):
    real_ids, fake_names = self._expected(split)
    distortions = self._distortions()
    records, missing = [], []
    for name in fake_names:
      path = self._fake_dir() / f"{name}.mp4"
      if not path.is_file():
        missing.append(str(path.relative_to(self.root)))
        continue
      target, _, actor = name.partition("_")
      extra = {"manipulation_type": split_facts.FACE_SWAP, "audio_source_id": target,
               "variant": self.variant}
      if name in distortions:
        extra["distortions"] = distortions[name]
      records.append(base.VideoRecord(
          video_path=str(path), label=constants.FAKE, video_id=name, dataset=self.name,
          split=split, category=METHOD, method=GENERATOR, identity=actor, source_id=actor,
          target_id=target,
          has_audio=base.audio_hint(self.audio, path), extra=extra))
    if self.ffpp_root is None:
      log.warning("DeeperForensics: no ffpp_root given, so the %d real (FF++ target) videos of "
                  "this protocol are not listed; pass ffpp_root=<FaceForensics++ root>",
                  len(real_ids))
      return records, missing
    for video_id in real_ids:
      path = faceforensics.real_path(self.ffpp_root, self.compression, video_id)
      if not path.is_file():
        missing.append(str(path))
        continue
      records.append(base.VideoRecord(
          video_path=str(path), label=constants.REAL, video_id=video_id, dataset=self.name,
          split=split, category="real", identity=video_id, source_id=video_id,
          has_audio=base.audio_hint(self.audio, path),
          extra={"manipulation_type": "real", "audio_source_id": video_id,
                 "compression": self.compression}))
    return records, missing
