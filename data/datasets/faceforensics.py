"""FaceForensics++ (Rössler et al., 2019): 1000 YouTube sequences and their manipulations.

Where to get it: fill in the form at https://github.com/ondyari/FaceForensics (dataset/README)
and run the download script it sends, e.g.
``python download-FaceForensics.py <root> -d all -c c23 -t videos``. For FakeOut's audio
enrichment also ``-d original_youtube_videos`` and ``-d original_youtube_videos_info`` (two zips,
``downloaded_videos.zip`` and ``downloaded_videos_info.zip``, to unzip in ``<root>``).

Layout under ``--root`` (exactly as the download script writes it)::

  original_sequences/youtube/<c>/videos/000.mp4 ... 999.mp4        real
  manipulated_sequences/<Method>/<c>/videos/<target>_<source>.mp4    fake
  splits/{train,val,test}.json          optional: overrides the bundled official split
  downloaded_videos/<youtube_id>/...    optional, for audio enrichment (see enrichment.py)

``<c>`` is the compression: ``c23`` (default, FakeOut's "HQ"), ``c40`` or ``raw`` (c0).
``<Method>`` is Deepfakes, FaceSwap, Face2Face, NeuralTextures (the four FakeOut uses) and,
in newer downloads, FaceShifter and DeepFakeDetection.

Naming: a manipulated video ``000_003.mp4`` puts source ``003`` into target video ``000``: for
the face swaps (Deepfakes, FaceSwap, FaceShifter) the face shown is 003's on 000's head and
lips; for the reenactments (Face2Face, NeuralTextures) 000's face moves with 003's expressions.

Splits: the official split json lists 70/70/360 pairs of ids for test/val/train; a split holds
the real videos of its ids and the fakes of its pairs in both orders (140 reals and 140 fakes
per method for test). ``all`` lists everything on disk. The videos have no audio track
(``has_audio`` False); FakeOut's enrichment attaches YouTube audio later.

Command-line name: ``ffpp`` (aliases ``faceforensics``, ``faceforensics++``).
"""
from __future__ import annotations

import logging
import pathlib
from typing import Optional

from data import constants
from data.datasets import base
from data.datasets import splits as split_facts

log = logging.getLogger(__name__)

ORIGINAL_DIR = ("original_sequences", "youtube")
MANIPULATED_DIR = "manipulated_sequences"


def real_dir(root: pathlib.Path, compression: str) -> pathlib.Path:
  return root.joinpath(*ORIGINAL_DIR, compression, "videos")


def fake_dir(root: pathlib.Path, method: str, compression: str) -> pathlib.Path:
  return root / MANIPULATED_DIR / method / compression / "videos"


def real_path(root: pathlib.Path, compression: str, video_id: str) -> pathlib.Path:
  return real_dir(root, compression) / f"{video_id}.mp4"


def fake_path(root: pathlib.Path, method: str, compression: str, name: str) -> pathlib.Path:
  return fake_dir(root, method, compression) / f"{name}.mp4"


def check_ffpp_root(root: pathlib.Path, title: str) -> None:
  """Raises DatasetLayoutError unless ``root`` holds original_ or manipulated_sequences/."""
  if (root / ORIGINAL_DIR[0]).is_dir() or (root / MANIPULATED_DIR).is_dir():
    return
  hint = ""
  if root.name in (ORIGINAL_DIR[0], MANIPULATED_DIR, "youtube", "videos"):
    hint = " (pass the folder that contains original_sequences/, not a folder inside it)"
  raise base.DatasetLayoutError(
      f"{str(root)!r} does not look like a {title} root: neither original_sequences/ nor "
      f"manipulated_sequences/ is there{hint}. Expected FaceForensics++'s download layout: "
      "original_sequences/youtube/c23/videos/000.mp4 and "
      "manipulated_sequences/<Method>/c23/videos/000_003.mp4")


def _official_split(video_id: str) -> str:
  """The official FF++ split of a sequence id ('' for ids outside FF++'s 1000)."""
  return split_facts.ffpp_split_of_id().get(video_id, "")


def ffpp_fake_fields(name: str, method: str) -> dict:
  """Identity fields of an FF++-named fake ``<target>_<source>`` made by ``method``."""
  target, _, source = name.partition("_")
  kind = split_facts.MANIPULATION_TYPE.get(method, "unknown")
  # Face swap: the viewer sees the source's face with the target's lips (target's audio fits).
  # Reenactment: the target's face moves as the source spoke (source's audio fits).
  identity = target if kind == split_facts.REENACTMENT else source
  audio_source = source if kind == split_facts.REENACTMENT else target
  return dict(identity=identity, source_id=source, target_id=target,
              extra={"manipulation_type": kind, "audio_source_id": audio_source})


class FaceForensicsAdapter(base.DatasetAdapter):
  """FaceForensics++ real and manipulated sequences at one compression.

  Args:
    root: the folder holding original_sequences/ and manipulated_sequences/.
    compression: c23 (default), c40, raw (or c0).
    methods: manipulation folders to list (default the four of FakeOut); 'all' = every folder
      under manipulated_sequences/ except DeepFakeDetection (a separate set with its own
      actor videos, not FF++ pairs).
    split_json: an FF++-style pairs json used for the requested split instead of the official
      one (also found automatically at ``<root>/splits/<split>.json``).
    include_real: list the original sequences too.
    audio: has_audio hint: 'none' (FF++ is silent), 'probe' (look at each file), 'assume'.
  """
  name = "ffpp"
  title = "FaceForensics++"
  splits = ("train", "val", "test", "all")
  expected_layout = ("original_sequences/youtube/c23/videos/000.mp4 and "
                     "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4 (FF++ download "
                     "script layout)")

  def __init__(self, root: base.PathLike, compression: str = "c23",
               methods: tuple[str, ...] = split_facts.FFPP_METHODS,
               split_json: Optional[str] = None, include_real: bool = True,
               audio: str = "none"):
    super().__init__(root)
    if compression not in split_facts.FFPP_COMPRESSIONS:
      raise ValueError(f"compression must be one of {sorted(split_facts.FFPP_COMPRESSIONS)}, "
                       f"got {compression!r}")
    if audio not in base.AUDIO_MODES:
      raise ValueError(f"audio must be one of {base.AUDIO_MODES}, got {audio!r}")
    self.compression = split_facts.FFPP_COMPRESSIONS[compression]
    self.methods = base.split_csv_option(methods)
    self.split_json = split_json
    self.include_real = include_real
    self.audio = audio

  def _check_root(self) -> None:
    check_ffpp_root(self.root, self.title)

  def _methods(self) -> tuple[str, ...]:
    if self.methods == ("all",):
      folder = self.root / MANIPULATED_DIR
      if not folder.is_dir():
        return ()
      return tuple(sorted(p.name for p in folder.iterdir()
                          if p.is_dir() and p.name != "DeepFakeDetection"))
    return self.methods

  def split_pairs(self, split: str) -> Optional[list[tuple[str, str]]]:
    """Pairs defining ``split`` (None for 'all'): user json, root-local json, or official."""
    if split == "all":
      return None
    if self.split_json:
      return split_facts.load_split_pairs(self.split_json)
    local = self.root / "splits" / f"{split}.json"
    if local.is_file():
      log.info("using the split file next to the data: %s", local)
      return split_facts.load_split_pairs(local)
    return list(split_facts.ffpp_split_pairs(split))

  def _list(self, split):
    pairs = self.split_pairs(split)
    records, missing = [], []
    if self.include_real:
      self._list_real(split, pairs, records, missing)
    for method in self._methods():
      self._list_method(split, method, pairs, records, missing)
    return records, missing

  def _list_real(self, split, pairs, records, missing):
    folder = real_dir(self.root, self.compression)
    if pairs is None:
      ids = [p.stem for p in base.find_videos(folder, (".mp4",))]
    else:
      ids = sorted(split_facts.ids_of_pairs(pairs))
    for video_id in ids:
      path = real_path(self.root, self.compression, video_id)
      if not path.is_file():
        missing.append(str(path.relative_to(self.root)))
        continue
      records.append(self.real_record(path, video_id, split))

  def real_record(self, path: pathlib.Path, video_id: str, split: str) -> base.VideoRecord:
    return base.VideoRecord(
        video_path=str(path), label=constants.REAL, video_id=video_id, dataset=self.name,
        split=split, category="real", identity=video_id, source_id=video_id,
        has_audio=base.audio_hint(self.audio, path),
        extra={"compression": self.compression, "manipulation_type": "real",
               "audio_source_id": video_id, "official_split": _official_split(video_id)})

  def _list_method(self, split, method, pairs, records, missing):
    folder = fake_dir(self.root, method, self.compression)
    if not folder.is_dir():
      log.warning("%s: no %s videos at %s (not downloaded?)", self.title, method, folder)
    if pairs is None:
      names = [p.stem for p in base.find_videos(folder, (".mp4",))]
    else:
      names = sorted(split_facts.fakes_of_pairs(pairs))
    for name in names:
      path = fake_path(self.root, method, self.compression, name)
      if not path.is_file():
        missing.append(str(path.relative_to(self.root)))
        continue
      records.append(self.fake_record(path, name, method, split))

  def fake_record(self, path: pathlib.Path, name: str, method: str,
                  split: str) -> base.VideoRecord:
    fields = ffpp_fake_fields(name, method)
    fields["extra"].update(compression=self.compression,
                           official_split=_official_split(fields["target_id"]))
    return base.VideoRecord(
        video_path=str(path), label=constants.FAKE, video_id=f"{method}/{name}",
        dataset=self.name, split=split, category=method, method=method,
        has_audio=base.audio_hint(self.audio, path), **fields)
