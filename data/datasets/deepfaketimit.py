"""DeepfakeTIMIT (Korshunov & Marcel, 2018): GAN face swaps of VidTIMIT speakers.

Where to get it: https://www.idiap.ch/en/scientific-research/data/deepfaketimit (fakes) and
https://conradsanderson.id.au/vidtimit/ (the real VidTIMIT recordings, a separate download;
pass its folder as ``vidtimit_root``).

Layout under ``--root`` (``DeepfakeTIMIT/``)::

  higher_quality/<subject>/<sentence>-video-<face>.avi    HQ fake (128x128 model), e.g.
                                                          fadg0/sa1-video-fram1.avi
  higher_quality/<subject>/<sentence>.wav                 that recording's audio (if shipped)
  lower_quality/<subject>/...                             LQ fakes (64x64 model)

``<subject>`` is the VidTIMIT speaker whose recording is kept (target, their audio), ``<face>``
the speaker whose face is swapped in (source). 32 subjects x 10 sentences = 320 fakes per
quality.

Real videos, under ``vidtimit_root`` (VidTIMIT's own layout)::

  <subject>/video/<sentence>/001 002 ...    JPEG frames without extension, 25 fps
  <subject>/audio/<sentence>.wav
  (or a converted <subject>/<sentence>.avi|.mp4 file)

An image-sequence real video is listed with ``video_path`` = the frame folder,
``audio_path`` = the wav and ``extra['video_kind'] = 'image_sequence'`` (fps in
``extra['fps']``); the decoder must read such folders (or convert VidTIMIT to mp4 first).

Split ``test``: the fakes of the chosen quality and, with ``vidtimit_root``, the real recording
behind each (subject, sentence) once: FakeOut's "all 640 HQ videos" = 320 fakes + 320 reals.

Command-line name: ``deepfaketimit``.
"""
from __future__ import annotations

import logging
import pathlib
from typing import Optional

from data import constants
from data.datasets import base

log = logging.getLogger(__name__)

QUALITIES = {"higher": ("higher_quality", "HQ"), "lower": ("lower_quality", "LQ")}
VIDTIMIT_FPS = 25
GENERATOR = "faceswap-GAN"
_MARK = "-video-"


class DeepfakeTIMITAdapter(base.DatasetAdapter):
  """DeepfakeTIMIT fakes and their VidTIMIT originals.

  Args:
    root: the DeepfakeTIMIT folder (higher_quality/, lower_quality/).
    quality: 'higher' (default, HQ), 'lower' or 'both'.
    vidtimit_root: the VidTIMIT folder, for the real videos; without it only fakes.
  """
  name = "deepfaketimit"
  title = "DeepfakeTIMIT"
  splits = ("test",)
  expected_layout = "DeepfakeTIMIT/ with higher_quality/fadg0/sa1-video-fram1.avi"

  def __init__(self, root: base.PathLike, quality: str = "higher",
               vidtimit_root: Optional[str] = None):
    super().__init__(root)
    if quality not in (*QUALITIES, "both"):
      raise ValueError(f"quality must be higher, lower or both, got {quality!r}")
    self.qualities = tuple(QUALITIES) if quality == "both" else (quality,)
    self.vidtimit_root = (pathlib.Path(vidtimit_root).expanduser().resolve()
                          if vidtimit_root else None)

  def _check_root(self):
    folders = [QUALITIES[q][0] for q in self.qualities]
    if not any((self.root / f).is_dir() for f in folders):
      raise self.layout_error(f"no {' or '.join(f + '/' for f in folders)}")
    if self.vidtimit_root is not None and not self.vidtimit_root.is_dir():
      raise base.DatasetLayoutError(f"vidtimit_root {str(self.vidtimit_root)!r} is not a "
                                    "directory; expected VidTIMIT/<subject>/video/<sentence>/")

  def _list(self, split):
    records, missing, pairs = [], [], set()
    for quality in self.qualities:
      folder, short = QUALITIES[quality]
      if not (self.root / folder).is_dir():
        log.warning("DeepfakeTIMIT: no %s/ under %s", folder, self.root)
        continue
      for path in base.find_videos(self.root / folder, (".avi", ".mp4"), recursive=True):
        if _MARK not in path.stem:
          continue
        sentence, _, face = path.stem.partition(_MARK)
        subject = path.parent.name
        wav = path.with_name(f"{sentence}.wav")
        pairs.add((subject, sentence))
        records.append(base.VideoRecord(
            video_path=str(path), label=constants.FAKE,
            video_id=f"{short}/{subject}/{path.stem}", dataset=self.name, split=split,
            category=short, method=GENERATOR, identity=face, source_id=face, target_id=subject,
            has_audio=wav.is_file() or base.has_audio_stream(path),
            audio_path=str(wav) if wav.is_file() else "",
            extra={"quality": short, "sentence": sentence, "manipulation_type": "face_swap"}))
    if self.vidtimit_root is None:
      log.warning("DeepfakeTIMIT: no vidtimit_root given, so the real videos are not listed; "
                  "pass vidtimit_root=<VidTIMIT folder>")
      return records, missing
    for subject, sentence in sorted(pairs):
      record = self._real(subject, sentence, split)
      if record is None:
        missing.append(f"{subject}/video/{sentence}")
      else:
        records.append(record)
    return records, missing

  def _real(self, subject: str, sentence: str, split: str) -> Optional[base.VideoRecord]:
    person = self.vidtimit_root / subject
    common = dict(label=constants.REAL, video_id=f"real/{subject}/{sentence}",
                  dataset=self.name, split=split, category="real", identity=subject,
                  source_id=subject)
    for suffix in (".mp4", ".avi", ".mov"):
      converted = person / f"{sentence}{suffix}"
      if converted.is_file():
        return base.VideoRecord(video_path=str(converted), extra={"sentence": sentence},
                                **common)
    frames = person / "video" / sentence
    if frames.is_dir() and any(p.is_file() for p in frames.iterdir()):
      wav = person / "audio" / f"{sentence}.wav"
      return base.VideoRecord(
          video_path=str(frames), has_audio=wav.is_file(),
          audio_path=str(wav) if wav.is_file() else "",
          extra={"sentence": sentence, "video_kind": "image_sequence",
                 "fps": str(VIDTIMIT_FPS)}, **common)
    return None
