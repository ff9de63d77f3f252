"""Audio enrichment of FaceForensics++, DeeperForensics and FaceShifter (FakeOut Sec. 4.2).

FF++ videos are silent, but each of its 1000 sequences was cut from a YouTube video whose
audio can be recovered. FakeOut attaches to every video the audio that fits its lips:

* real sequence ``000``: its own YouTube audio;
* face swap ``<target>_<source>`` (Deepfakes, FaceSwap, FaceShifter, DeeperForensics): the
  target's audio (the target's head and lips are kept);
* reenactment (Face2Face, NeuralTextures): the source's audio (the target's face is driven by
  the source's expressions).

Only sequences whose audio the authors verified (bundled FaceForensics_proper_audio_files.json)
get audio; the others keep ``has_audio = False``. This module plans which file and which span
to use for each video; the records stage cuts the audio (``read_audio_span``) and muxes it.

What the user supplies (FF++ download script, ``-d original_youtube_videos`` and
``-d original_youtube_videos_info``, unzipped in the FF++ root)::

  downloaded_videos/<youtube_id>/<youtube_id>.mp4     the YouTube video (or any file
                                                      <youtube_id>.<ext> in --youtube-dir or
                                                      its <youtube_id>/ subfolder, e.g. a
                                                      yt-dlp download)
  downloaded_videos_info/<youtube_id>/<youtube_id>.json           youtube-dl info ('fps')
  downloaded_videos_info/<youtube_id>/extracted_sequences/<n>.json  the YouTube frame numbers
                                                      of the n-th sequence taken from it
  conversion_dict.json   FF++ id -> "<youtube_id> <n>" (dataset/conversion_dict.json of the
                         FF++ GitHub repository)

The span of sequence ``000`` starts at its first frame number / fps and lasts its frame count
/ fps. Without a conversion_dict.json, the mapping is rebuilt the way FF++ made it (sequence
folders ``<youtube_id>_<n>`` sorted, numbered 000..999) when exactly 1000 sequences are found.

Command line: ``python -m data.datasets.enrichment --dataset ffpp --root FFPP --split test
--out plan.csv`` (``--ffpp-root`` for DeeperForensics).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math
import pathlib
import sys
from typing import Iterable, Optional, Sequence

import numpy as np

from data import constants
from data.datasets import base
from data.datasets import splits as split_facts

log = logging.getLogger(__name__)

CONVERSION_DICT = "conversion_dict.json"
INFO_DIRS = ("downloaded_videos_info", "downloaded_videos")
VIDEO_DIR = "downloaded_videos"
MEDIA_SUFFIXES = (".mp4", ".mkv", ".webm", ".m4a", ".mov", ".flv", ".wav", ".opus", ".mp3",
                  ".aac", ".ogg")
FFPP_SEQUENCES = 1000


@dataclasses.dataclass(frozen=True)
class SequenceSpan:
  """Where FF++ sequence ``sequence_id`` lies in its YouTube video."""
  sequence_id: str
  youtube_id: str
  sequence_index: int
  first_frame: int
  n_frames: int
  fps: float

  @property
  def start_seconds(self) -> float:
    return self.first_frame / self.fps

  @property
  def duration_seconds(self) -> float:
    return self.n_frames / self.fps


@dataclasses.dataclass(frozen=True)
class AudioPlan:
  """The audio to attach to one video: ``audio_path`` from ``start`` for ``duration`` seconds.

  ``has_audio`` False means the video stays silent; ``reason`` says why.
  """
  video_id: str
  has_audio: bool
  audio_path: str = ""
  start: float = 0.0
  duration: float = 0.0
  audio_source_id: str = ""
  youtube_id: str = ""
  reason: str = ""


# --- where the sequences come from -----------------------------------------------------------


def load_conversion_dict(path: base.PathLike) -> dict[str, tuple[str, int]]:
  """FF++'s conversion_dict.json: ``{'000': ('--b1Ua-kWJE', 0), ...}``."""
  raw = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
  out = {}
  for key, value in raw.items():
    youtube_id, _, index = str(value).rpartition(" ")
    if not youtube_id or not index.isdigit():
      raise ValueError(f"{path}: entry {key!r}: expected '<youtube_id> <n>', got {value!r}")
    out[str(key)] = (youtube_id, int(index))
  return out


def sequence_files(info_dir: pathlib.Path, youtube_id: str) -> list[pathlib.Path]:
  """The sequence jsons of one YouTube video in FF++'s order (sorted file names)."""
  folder = info_dir / youtube_id / "extracted_sequences"
  return sorted(folder.glob("*.json")) if folder.is_dir() else []


def derive_conversion_dict(info_dir: pathlib.Path) -> dict[str, tuple[str, int]]:
  """Rebuilds FF++'s id mapping from the info folder: the sorted names ``<youtube_id>_<n>`` of
  all sequences numbered 000..999, as FF++'s create_conversion_list did. Needs all 1000."""
  names = []
  for folder in sorted(p for p in info_dir.iterdir() if p.is_dir()):
    names += [(f"{folder.name}_{n}", folder.name, n)
              for n in range(len(sequence_files(info_dir, folder.name)))]
  if len(names) != FFPP_SEQUENCES:
    raise FileNotFoundError(
        f"no {CONVERSION_DICT} found and {info_dir} holds {len(names)} sequences, not the "
        f"{FFPP_SEQUENCES} needed to rebuild FF++'s id mapping; download dataset/"
        f"{CONVERSION_DICT} from https://github.com/ondyari/FaceForensics and pass "
        "--conversion-dict")
  names.sort()
  return {f"{i:03d}": (youtube_id, n) for i, (_, youtube_id, n) in enumerate(names)}


class YouTubeSources:
  """Finds FF++ sequences in the user's YouTube downloads.

  Args:
    ffpp_root: the FaceForensics++ root (defaults for the folders below are inside it).
    youtube_dir: folder of the YouTube videos (default <ffpp_root>/downloaded_videos).
    info_dir: folder of the info jsons (default <ffpp_root>/downloaded_videos_info, else
      downloaded_videos, which holds the same files).
    conversion_dict: FF++'s conversion_dict.json (default: looked for in ffpp_root, its misc/
      and the info folder, else rebuilt).
  """

  def __init__(self, ffpp_root: base.PathLike, youtube_dir: Optional[base.PathLike] = None,
               info_dir: Optional[base.PathLike] = None,
               conversion_dict: Optional[base.PathLike] = None):
    self.ffpp_root = pathlib.Path(ffpp_root).expanduser().resolve()
    self.youtube_dir = (pathlib.Path(youtube_dir).expanduser() if youtube_dir
                        else self.ffpp_root / VIDEO_DIR)
    if info_dir:
      self.info_dir = pathlib.Path(info_dir).expanduser()
    else:
      found = [self.ffpp_root / d for d in INFO_DIRS if (self.ffpp_root / d).is_dir()]
      if not found:
        raise FileNotFoundError(
            f"no {' or '.join(INFO_DIRS)} folder in {self.ffpp_root}: download them with the "
            "FF++ script (-d original_youtube_videos_info) and unzip there, or pass --info-dir")
      self.info_dir = found[0]
    self.conversion = self._conversion(conversion_dict)
    self._spans: dict[str, Optional[SequenceSpan]] = {}

  def _conversion(self, explicit) -> dict[str, tuple[str, int]]:
    if explicit:
      return load_conversion_dict(explicit)
    for candidate in (self.ffpp_root / CONVERSION_DICT, self.ffpp_root / "misc" / CONVERSION_DICT,
                      self.info_dir / CONVERSION_DICT):
      if candidate.is_file():
        return load_conversion_dict(candidate)
    log.warning("no %s found; rebuilding FF++'s id mapping from %s", CONVERSION_DICT,
                self.info_dir)
    return derive_conversion_dict(self.info_dir)

  def span(self, sequence_id: str) -> Optional[SequenceSpan]:
    """The sequence's span in its YouTube video, or None when its jsons are absent."""
    if sequence_id not in self._spans:
      self._spans[sequence_id] = self._load_span(sequence_id)
    return self._spans[sequence_id]

  def _load_span(self, sequence_id: str) -> Optional[SequenceSpan]:
    if sequence_id not in self.conversion:
      return None
    youtube_id, index = self.conversion[sequence_id]
    files = sequence_files(self.info_dir, youtube_id)
    if index >= len(files):
      return None
    frames = json.loads(files[index].read_text(encoding="utf-8"))
    if not frames:
      return None
    first, last = int(frames[0]), int(frames[-1])
    if last - first + 1 != len(frames):
      log.warning("sequence %s (%s, %s) is not contiguous: %d frame numbers from %d to %d; "
                  "using the span from first to last", sequence_id, youtube_id,
                  files[index].name, len(frames), first, last)
    fps = self._fps(youtube_id)
    if fps is None:
      return None
    return SequenceSpan(sequence_id, youtube_id, index, first, last - first + 1, fps)

  def _fps(self, youtube_id: str) -> Optional[float]:
    info = self.info_dir / youtube_id / f"{youtube_id}.json"
    if info.is_file():
      fps = json.loads(info.read_text(encoding="utf-8")).get("fps")
      if fps:
        return float(fps)
    video = self.video(youtube_id)
    if video is None:
      return None
    import av  # pylint: disable=import-outside-toplevel
    with av.open(str(video)) as container:
      streams = container.streams.video
      if streams and streams[0].average_rate:
        return float(streams[0].average_rate)
    return None

  def video(self, youtube_id: str) -> Optional[pathlib.Path]:
    """The user's YouTube file for ``youtube_id`` (with an audio stream, if any)."""
    for folder in (self.youtube_dir / youtube_id, self.youtube_dir):
      if folder.is_dir():
        for path in sorted(folder.iterdir()):
          if path.stem == youtube_id and path.suffix.lower() in MEDIA_SUFFIXES:
            return path
    return None


# --- planning --------------------------------------------------------------------------------


def plan_audio(records: Iterable[base.VideoRecord], sources: YouTubeSources,
               verified_ids: Optional[Iterable[str]] = None) -> list[AudioPlan]:
  """The audio plan of each record (FF++, DeeperForensics, FaceShifter records).

  A record is planned from ``extra['audio_source_id']`` (set by those adapters); its visual
  sequence (``target_id`` for fakes, its own id for reals) caps the duration.
  """
  verified = frozenset(verified_ids) if verified_ids is not None else \
      split_facts.proper_audio_ids()
  plans, silent = [], 0
  for record in records:
    plan = _plan_one(record, sources, verified)
    silent += not plan.has_audio
    plans.append(plan)
  log.info("audio plan: %d of %d videos get YouTube audio, %d stay silent",
           len(plans) - silent, len(plans), silent)
  return plans


def _plan_one(record: base.VideoRecord, sources: YouTubeSources,
              verified: frozenset[str]) -> AudioPlan:
  source_id = record.extra.get("audio_source_id", "")
  no = dict(video_id=record.video_id, has_audio=False, audio_source_id=source_id)
  if not source_id:
    return AudioPlan(reason="not an FF++-derived video (no audio_source_id)", **no)
  if source_id not in verified:
    return AudioPlan(reason=f"audio of sequence {source_id} is not in the verified list", **no)
  span = sources.span(source_id)
  if span is None:
    return AudioPlan(reason=f"no YouTube frame mapping for sequence {source_id} in "
                     f"{sources.info_dir}", **no)
  video = sources.video(span.youtube_id)
  if video is None:
    return AudioPlan(youtube_id=span.youtube_id, reason=f"YouTube video {span.youtube_id} not "
                     f"found in {sources.youtube_dir}", **no)
  duration = span.duration_seconds
  visual_id = record.target_id or record.source_id
  if record.label == constants.FAKE and visual_id and visual_id != source_id:
    visual = sources.span(visual_id)
    if visual is not None:
      duration = min(duration, visual.duration_seconds)
  return AudioPlan(video_id=record.video_id, has_audio=True, audio_path=str(video),
                   start=span.start_seconds, duration=duration, audio_source_id=source_id,
                   youtube_id=span.youtube_id)


def apply_plan(records: Iterable[base.VideoRecord],
               plans: Iterable[AudioPlan]) -> list[base.VideoRecord]:
  """Records with the planned audio set (has_audio, audio_path, audio_start, audio_duration)."""
  by_id = {plan.video_id: plan for plan in plans}
  out = []
  for record in records:
    plan = by_id.get(record.video_id)
    if plan is None:
      out.append(record)
    elif plan.has_audio:
      out.append(record.replace(has_audio=True, audio_path=plan.audio_path,
                                audio_start=plan.start, audio_duration=plan.duration))
    else:
      out.append(record.replace(has_audio=False, audio_path=""))
  return out


def write_plan(plans: Sequence[AudioPlan], path: base.PathLike) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fields = [f.name for f in dataclasses.fields(AudioPlan)]
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows(dataclasses.asdict(p) for p in plans)
  return path


def read_plan(path: base.PathLike) -> list[AudioPlan]:
  with open(path, newline="", encoding="utf-8") as f:
    return [AudioPlan(video_id=row["video_id"], has_audio=row["has_audio"] == "True",
                      audio_path=row["audio_path"], start=float(row["start"]),
                      duration=float(row["duration"]), audio_source_id=row["audio_source_id"],
                      youtube_id=row["youtube_id"], reason=row["reason"])
            for row in csv.DictReader(f)]


# --- reading a span --------------------------------------------------------------------------
# A minimal reader kept here so that planning and its tests do not wait for data/video.py;
# the records stage may call it or its own decoder.


def read_audio_span(path: base.PathLike, start: float = 0.0, duration: Optional[float] = None,
                    sample_rate: int = constants.SAMPLE_RATE) -> np.ndarray:
  """Mono float32 audio of ``path`` from ``start`` seconds for ``duration`` seconds.

  Decodes the first audio stream with PyAV, mixes it down to mono, cuts the span on the
  stream's own timestamps and resamples to ``sample_rate`` (scipy's polyphase resampler).
  Returns fewer samples than asked if the file ends earlier (never pads).

  Raises:
    ValueError: the file has no audio stream, or ``start`` is negative.
  """
  import av  # pylint: disable=import-outside-toplevel
  from scipy import signal  # pylint: disable=import-outside-toplevel
  if start < 0:
    raise ValueError(f"start must be >= 0 seconds, got {start}")
  with av.open(str(path)) as container:
    if not container.streams.audio:
      raise ValueError(f"{path} has no audio stream")
    stream = container.streams.audio[0]
    rate = stream.codec_context.sample_rate or stream.rate
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
    if start > 1.0 and stream.time_base:
      container.seek(int((start - 1.0) / stream.time_base), stream=stream, backward=True)
    chunks, first_time = [], None
    end = math.inf if duration is None else start + duration
    for frame in container.decode(stream):
      if frame.pts is not None and frame.time_base is not None:
        frame_time = float(frame.pts * frame.time_base)
      else:
        frame_time = None
      for out in resampler.resample(frame):
        if first_time is None:
          first_time = frame_time if frame_time is not None else 0.0
        chunks.append(out.to_ndarray()[0])
      if frame_time is not None and frame_time > end:
        break
    for out in resampler.resample(None):
      chunks.append(out.to_ndarray()[0])
  audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
  first_time = first_time or 0.0
  begin = max(0, int(round((start - first_time) * rate)))
  stop = len(audio) if duration is None else begin + int(round(duration * rate))
  audio = audio[begin:stop]
  if rate != sample_rate:
    g = math.gcd(int(rate), int(sample_rate))
    audio = signal.resample_poly(audio, sample_rate // g, int(rate) // g)
  return audio.astype(np.float32)


# --- command line ----------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
  from data import cli_errors  # pylint: disable=import-outside-toplevel
  return cli_errors.handle(lambda: _main(argv), verbose=cli_errors.verbose_requested(argv))


def _main(argv: Optional[Sequence[str]]) -> int:
  from data import cli_errors  # pylint: disable=import-outside-toplevel
  from data import logs  # pylint: disable=import-outside-toplevel
  from data import datasets  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser(
      prog="python -m data.datasets.enrichment",
      description="Plan FakeOut's YouTube audio enrichment of FF++ / DeeperForensics / "
                  "FaceShifter videos and write it as a CSV (video_id, audio_path, start, "
                  "duration, ...).")
  parser.add_argument("--dataset", required=True, choices=["ffpp", "faceshifter",
                                                           "deeperforensics"])
  parser.add_argument("--root", required=True, help="the dataset root")
  parser.add_argument("--split", default="test")
  parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                      help="adapter option, repeatable (e.g. compression=c40)")
  parser.add_argument("--ffpp-root", help="FaceForensics++ root (default: --root)")
  parser.add_argument("--youtube-dir", help="YouTube videos (default <ffpp-root>/"
                      "downloaded_videos)")
  parser.add_argument("--info-dir", help="info jsons (default <ffpp-root>/"
                      "downloaded_videos_info)")
  parser.add_argument("--conversion-dict", help="FF++'s conversion_dict.json")
  parser.add_argument("--out", required=True, help="CSV to write")
  parser.add_argument("-v", "--verbose", action="store_true")
  args = parser.parse_args(argv)
  logs.setup(args.verbose)
  options = datasets.parse_options(args.option)
  if args.dataset == "deeperforensics" and args.ffpp_root:
    options.setdefault("ffpp_root", args.ffpp_root)
  cli_errors.writable_file(args.out)
  try:
    listing = datasets.list_videos(args.dataset, args.root, args.split, options)
  except (ValueError, FileNotFoundError) as e:
    raise cli_errors.UserError(str(e), "see python -m data.datasets --help-datasets") from None
  ffpp_root = args.ffpp_root or (args.root if args.dataset != "deeperforensics" else None)
  if ffpp_root is None:
    parser.error("--ffpp-root is needed for deeperforensics")
  sources = YouTubeSources(ffpp_root, args.youtube_dir, args.info_dir, args.conversion_dict)
  plans = plan_audio(listing.records, sources)
  write_plan(plans, args.out)
  print(f"{sum(p.has_audio for p in plans)} of {len(plans)} videos get audio; plan written "
        f"to {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
