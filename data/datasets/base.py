"""What every dataset adapter returns, and the machinery they share.

An adapter knows one dataset's on-disk layout (exactly as its official download produces it)
and its official labels and splits. Given a root and a split it returns a :class:`Listing`:
one :class:`VideoRecord` per video, plus the paths the official metadata names that are not on
disk. Missing files never stop a listing; a root that is not the dataset at all does, with a
:class:`DatasetLayoutError` that says what was expected there.
"""
from __future__ import annotations

import abc
import collections
import csv
import dataclasses
import inspect
import logging
import os
import pathlib
import types
import typing
from typing import Any, ClassVar, Iterable, Iterator, Mapping, Optional, Sequence

from data import constants

log = logging.getLogger(__name__)

PathLike = typing.Union[str, os.PathLike]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")

# How many example paths a warning about missing files shows.
_EXAMPLES = 5


class DatasetLayoutError(ValueError):
  """The root given for a dataset is not that dataset (or a required file is unreadable)."""


@dataclasses.dataclass(frozen=True)
class VideoRecord:
  """One video of a dataset, with everything the records stage and the protocols need.

  Attributes:
    video_path: absolute path of the video file; for an image-sequence dataset (VidTIMIT) a
      directory of frames, flagged by ``extra['video_kind'] == 'image_sequence'``.
    label: ``constants.REAL`` (0) or ``constants.FAKE`` (1).
    video_id: unique within (dataset, split); what score files and tables key on.
    dataset: the adapter's name (``ffpp``, ``dfdc``, ...).
    split: the split it was listed for (``train``, ``val``, ``test``, ...).
    category: ``real`` or the manipulation (FF++ method, FakeAVCeleb category, ...).
    method: the generation method when the dataset names one (``Deepfakes``, ``wav2lip``,
      ``dffs``, ...); '' for real videos.
    identity: the person the viewer sees (for identity-disjoint splits); '' when unknown.
    source_id / target_id: the dataset's own source and target ids (see each module).
    has_audio: whether the records stage should expect usable audio for this video.
    audio_path: a separate file to take the audio from ('' = the video's own audio track).
    audio_start / audio_duration: the span of ``audio_path`` to use, in seconds (duration None
      = to the end). Set by audio enrichment (``enrichment.apply_plan``).
    extra: string-valued facts the paper protocols need (compression, subsets, ...).
  """
  video_path: str
  label: int
  video_id: str
  dataset: str
  split: str
  category: str
  method: str = ""
  identity: str = ""
  source_id: str = ""
  target_id: str = ""
  has_audio: bool = True
  audio_path: str = ""
  audio_start: float = 0.0
  audio_duration: Optional[float] = None
  extra: Mapping[str, str] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.label not in (constants.REAL, constants.FAKE):
      raise ValueError(f"label must be {constants.REAL} (real) or {constants.FAKE} (fake), got "
                       f"{self.label!r} for video {self.video_id!r}")

  def replace(self, **changes: Any) -> "VideoRecord":
    return dataclasses.replace(self, **changes)

  def to_row(self) -> dict[str, str]:
    """A flat row of strings (``extra`` keys prefixed ``extra.``) for CSV manifests."""
    row = {}
    for field in dataclasses.fields(self):
      if field.name == "extra":
        continue
      value = getattr(self, field.name)
      row[field.name] = "" if value is None else str(value)
    for key, value in sorted(self.extra.items()):
      row[f"extra.{key}"] = str(value)
    return row

  @classmethod
  def from_row(cls, row: Mapping[str, str]) -> "VideoRecord":
    extra = {k[len("extra."):]: v for k, v in row.items() if k.startswith("extra.") and v != ""}
    duration = row.get("audio_duration", "")
    return cls(video_path=row["video_path"], label=int(row["label"]), video_id=row["video_id"],
               dataset=row["dataset"], split=row["split"], category=row["category"],
               method=row.get("method", ""), identity=row.get("identity", ""),
               source_id=row.get("source_id", ""), target_id=row.get("target_id", ""),
               has_audio=row.get("has_audio", "True") == "True",
               audio_path=row.get("audio_path", ""),
               audio_start=float(row.get("audio_start") or 0.0),
               audio_duration=float(duration) if duration else None, extra=extra)


@dataclasses.dataclass
class Listing:
  """The videos of one split of one dataset, and what the official metadata names but is absent.

  ``missing`` holds paths (or ids) the dataset's metadata promises that are not on disk; they are
  not in ``records``. ``skipped`` is how many listed videos were left out for that reason.
  """
  dataset: str
  split: str
  records: list[VideoRecord]
  missing: list[str] = dataclasses.field(default_factory=list)

  def __len__(self) -> int:
    return len(self.records)

  def __iter__(self) -> Iterator[VideoRecord]:
    return iter(self.records)

  @property
  def skipped(self) -> int:
    return len(self.missing)

  def counts(self) -> dict[str, int]:
    """Videos per category, e.g. ``{'real': 140, 'Deepfakes': 140, ...}``."""
    return dict(sorted(collections.Counter(r.category for r in self.records).items()))

  def summary(self) -> str:
    n_fake = sum(r.label == constants.FAKE for r in self.records)
    text = (f"{self.dataset}/{self.split}: {len(self.records)} videos "
            f"({len(self.records) - n_fake} real, {n_fake} fake)")
    if self.missing:
      text += f"; {self.skipped} listed in the metadata but missing on disk, skipped"
    return text


def write_manifest(records: Iterable[VideoRecord], path: PathLike) -> pathlib.Path:
  """Writes records as a CSV manifest (one row per video; see ``VideoRecord.to_row``)."""
  rows = [record.to_row() for record in records]
  base = [f.name for f in dataclasses.fields(VideoRecord) if f.name != "extra"]
  extra = sorted({key for row in rows for key in row if key.startswith("extra.")})
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=base + extra, restval="")
    writer.writeheader()
    writer.writerows(rows)
  return path


def read_manifest(path: PathLike) -> list[VideoRecord]:
  """Reads a manifest written by :func:`write_manifest`."""
  with open(path, newline="", encoding="utf-8") as f:
    return [VideoRecord.from_row(row) for row in csv.DictReader(f)]


class DatasetAdapter(abc.ABC):
  """Lists one dataset's videos from its official on-disk layout.

  Subclasses set the class attributes, take their options as keyword arguments of
  ``__init__`` (typed: the command line coerces ``key=value`` strings by these annotations)
  and implement :meth:`_check_root` and :meth:`_list`.
  """
  name: ClassVar[str]
  title: ClassVar[str]
  splits: ClassVar[tuple[str, ...]]
  # One line shown when the root is wrong: what the user should point --root at.
  expected_layout: ClassVar[str]

  def __init__(self, root: PathLike):
    self.root = pathlib.Path(root).expanduser().resolve()

  def list_videos(self, split: str) -> Listing:
    """All videos of ``split`` that are on disk; warns about (and counts) the missing ones."""
    if split not in self.splits:
      raise ValueError(f"{self.title} has no split {split!r}; choose one of {list(self.splits)}")
    self.check_root()
    records, missing = self._list(split)
    return self._finish(split, records, missing)

  def check_root(self) -> None:
    """Raises DatasetLayoutError unless ``root`` looks like this dataset."""
    if not self.root.is_dir():
      raise DatasetLayoutError(
          f"{self.title} root {str(self.root)!r} is not a directory. Expected: "
          f"{self.expected_layout}")
    self._check_root()

  @abc.abstractmethod
  def _check_root(self) -> None:
    """Dataset-specific layout check; raise ``self.layout_error(...)`` on failure."""

  @abc.abstractmethod
  def _list(self, split: str) -> tuple[list[VideoRecord], list[str]]:
    """Returns (records of videos on disk, paths or ids named by the metadata but missing)."""

  def layout_error(self, problem: str) -> DatasetLayoutError:
    try:
      found = sorted(p.name + ("/" if p.is_dir() else "") for p in self.root.iterdir())
    except OSError:
      found = []
    shown = ", ".join(found[:12]) + (", ..." if len(found) > 12 else "") if found else "nothing"
    return DatasetLayoutError(
        f"{str(self.root)!r} does not look like a {self.title} root: {problem}. Expected: "
        f"{self.expected_layout}. Found at the root: {shown}.")

  def _finish(self, split: str, records: list[VideoRecord], missing: list[str]) -> Listing:
    by_id: dict[str, VideoRecord] = {}
    duplicates = []
    for record in records:
      if record.video_id in by_id:
        duplicates.append(record.video_id)
        continue
      by_id[record.video_id] = record
    if duplicates:
      log.warning("%s/%s: %d duplicate video ids kept once (e.g. %s)", self.name, split,
                  len(duplicates), ", ".join(duplicates[:_EXAMPLES]))
    missing = sorted(set(missing))
    if missing:
      log.warning("%s/%s: %d videos named by the metadata are missing under %s (e.g. %s); "
                  "continuing with the %d that exist, %d skipped", self.name, split, len(missing),
                  self.root, ", ".join(missing[:_EXAMPLES]), len(by_id), len(missing))
    listing = Listing(self.name, split, sorted(by_id.values(), key=lambda r: r.video_id),
                      missing)
    log.info("%s", listing.summary())
    return listing


# --------------------------------------------------------------------------------------------
# Helpers shared by the adapters.


def find_videos(directory: pathlib.Path, suffixes: Sequence[str] = VIDEO_SUFFIXES,
                recursive: bool = False) -> list[pathlib.Path]:
  """Video files in ``directory`` (sorted); an absent directory gives an empty list."""
  if not directory.is_dir():
    return []
  pattern = "**/*" if recursive else "*"
  return sorted(p for p in directory.glob(pattern)
                if p.suffix.lower() in suffixes and p.is_file() and not p.name.startswith("."))


def has_audio_stream(path: PathLike) -> bool:
  """Whether a media file has an audio stream (reads the container header only)."""
  import av  # pylint: disable=import-outside-toplevel
  try:
    with av.open(str(path)) as container:
      return any(stream.type == "audio" for stream in container.streams)
  except (av.error.FFmpegError, OSError) as e:
    log.warning("could not open %s to look for an audio stream: %s", path, e)
    return False


AUDIO_MODES = ("none", "probe", "assume")


def audio_hint(mode: str, path: PathLike, silent_default: bool = False) -> bool:
  """The has_audio hint for a file under an adapter's ``audio`` option.

  ``none``: the release is known to be silent (returns ``silent_default``); ``probe``: look at
  the file's streams; ``assume``: True.
  """
  if mode == "probe":
    return has_audio_stream(path)
  if mode == "assume":
    return True
  if mode == "none":
    return silent_default
  raise ValueError(f"audio option must be one of {AUDIO_MODES}, got {mode!r}")


def read_id_list(path: PathLike, what: str) -> list[str]:
  """Reads a list file: one id per line; blank lines and ``#`` comments ignored.

  A line may be a file name or path: ``abc.mp4`` and ``dir/abc.mp4`` both give ``abc``.
  """
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise FileNotFoundError(f"{what} list file {str(path)!r} does not exist")
  ids = []
  with open(path, encoding="utf-8-sig") as f:
    for line in f:
      line = line.split("#", 1)[0].strip()
      if line:
        ids.append(pathlib.PurePosixPath(line.replace("\\", "/")).name.split(".")[0])
  return ids


def split_csv_option(value: Optional[str | Sequence[str]]) -> tuple[str, ...]:
  """``'a,b'`` or ``['a', 'b']`` -> ``('a', 'b')``; None or '' -> ()."""
  if value is None or value == "":
    return ()
  if isinstance(value, str):
    return tuple(v.strip() for v in value.split(",") if v.strip())
  return tuple(value)


def _coerce(value: str, annotation: Any, key: str) -> Any:
  origin = typing.get_origin(annotation)
  args = [a for a in typing.get_args(annotation) if a is not type(None)]
  if origin in (typing.Union, types.UnionType) and len(args) == 1:
    if value.lower() in ("", "none"):
      return None
    return _coerce(value, args[0], key)
  if annotation is bool:
    if value.lower() in ("1", "true", "yes", "on"):
      return True
    if value.lower() in ("0", "false", "no", "off"):
      return False
    raise ValueError(f"option {key}={value!r}: expected true or false")
  if annotation in (int, float):
    try:
      return annotation(value)
    except ValueError:
      raise ValueError(f"option {key}={value!r}: expected a number") from None
  if origin is tuple or annotation is tuple:
    return split_csv_option(value)
  return value


def build_adapter(cls: type[DatasetAdapter], root: PathLike,
                  options: Mapping[str, Any] | None = None) -> DatasetAdapter:
  """Instantiates ``cls`` from string options (``{'compression': 'c40'}``), typed by __init__."""
  options = dict(options or {})
  signature = inspect.signature(cls.__init__)
  hints = typing.get_type_hints(cls.__init__)
  accepted = [n for n in signature.parameters if n not in ("self", "root")]
  unknown = sorted(set(options) - set(accepted))
  if unknown:
    raise ValueError(f"{cls.title} does not take option(s) {unknown}; it takes: "
                     f"{', '.join(accepted) or 'none'}")
  kwargs = {k: _coerce(v, hints.get(k, str), k) if isinstance(v, str) else v
            for k, v in options.items()}
  return cls(root, **kwargs)


def adapter_options(cls: type[DatasetAdapter]) -> dict[str, str]:
  """``{option: 'type = default'}`` for help texts."""
  signature = inspect.signature(cls.__init__)
  out = {}
  for name, param in signature.parameters.items():
    if name in ("self", "root"):
      continue
    default = "" if param.default is inspect.Parameter.empty else f" = {param.default!r}"
    out[name] = f"{param.annotation}{default}"
  return out
