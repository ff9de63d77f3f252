"""``python -m data.prepare``: a dataset split -> face tracks -> sharded TFRecords.

  python -m data.prepare --dataset NAME --root DIR --split SPLIT --out DIR [--option k=v ...]
      [--workers N] [--videos-per-shard K] [--runner direct|beam] [--beam-runner R ...]

The dataset adapter (data.datasets) lists the split's videos; they are sorted and cut into
shards of K videos. Every shard is one task: its videos are tracked (data.facetrack), each face
track becomes one record (data.records, schema SCHEMA_VERSION), and the shard is written
atomically. Under --out:

  <split>-00000-of-00012.tfrecord ...   finished shards (a crash leaves only *.partial files)
  <split>.plan.json                     which videos go to which shard (fixed on the first run)
  .shards.jsonl                         the journal: one line per shard attempt (its videos'
                                        lines, record count, size and SHA-256), append-only
  <split>.manifest.jsonl                one line per video: ok / no_face / error + reason,
                                        tracks, frames, timings (the face tracker's format)
  <split>.summary.json                  counts per label and category, failures

One run at a time writes into --out: a second run refuses (exit 2), or with ``--wait`` waits
for the first to finish. Each shard is written under a per-run temporary name, read back
(record count, checksums) and only then renamed into place and journaled. Re-running the same
command keeps the journaled shards, redoes the others and removes stale ``*.partial`` files of
killed runs, so an interrupted preparation resumes. The manifest and summary are rebuilt from
the journal on every run, so they cover every video of every attempt (a video that failed in an
earlier attempt and succeeded later keeps its earlier errors under ``previous_errors``). A video
that fails is recorded and skipped; its shard still completes. The exit status is 1 when any
video ended in error (no_face is not an error) or a shard is incomplete; 2 for a usage or input
error (see the README's exit-code table).

Runners: `direct` (default) uses local worker processes; `beam` runs the same shard task as an
Apache Beam pipeline (DirectRunner here; DataflowRunner, FlinkRunner, SparkRunner ... at scale,
with --root and --out on storage every worker can read and write, e.g. a shared or FUSE-mounted
file system).

Audio: each track carries the first audio channel of its video at 44.1 kHz, or, with
``--audio-plan PLAN.csv`` (written by ``python -m data.datasets.enrichment``, FakeOut's audio
enrichment of FF++, DeeperForensics and FaceShifter), the planned span of another file; videos
the plan marks silent carry no audio.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import pathlib
import sys
import time
import traceback
from typing import Optional, Sequence

import numpy as np

from data import cli_errors
from data import constants
from data import datasets
from data import logs
from data import records
from data import video
from data.datasets import base as datasets_base
from data.datasets import enrichment
from data.facetrack import cli as facetrack_cli
from data.facetrack import pipeline

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ShardJob:
  """One shard to write. `video_id` / `path` name the shard (the facetrack driver's Job API)."""
  video_id: str
  path: str
  rows: tuple  # VideoRecord.to_row() dicts of the shard's videos, in order


@dataclasses.dataclass(frozen=True)
class PrepareOptions:
  tracker: pipeline.TrackerOptions = pipeline.TrackerOptions()
  jpeg_quality: int = records.JPEG_QUALITY


def plan_shards(listing: Sequence[datasets_base.VideoRecord], out: pathlib.Path, split: str,
                videos_per_shard: int) -> list[ShardJob]:
  """Fixes which videos go to which shard; a saved plan is reused so that resuming is exact."""
  plan_path = out / f"{split}.plan.json"
  by_id = {r.video_id: r for r in listing}
  if plan_path.is_file():
    plan = json.loads(plan_path.read_text())
    planned = {v for shard in plan["shards"] for v in shard["videos"]}
    if planned != set(by_id):
      log.warning("the listing changed since %s was written (%d new, %d gone); keeping the "
                  "saved plan (delete it to re-plan from scratch)", plan_path,
                  len(set(by_id) - planned), len(planned - set(by_id)))
  else:
    ids = sorted(by_id)
    count = max(1, int(np.ceil(len(ids) / videos_per_shard)))
    plan = {"split": split, "schema_version": records.SCHEMA_VERSION, "shards": [
        {"name": records.shard_name(split, i, count),
         "videos": ids[i * videos_per_shard:(i + 1) * videos_per_shard]} for i in range(count)]}
    out.mkdir(parents=True, exist_ok=True)
    plan_path.write_text(json.dumps(plan, indent=1))
  jobs = []
  for shard in plan["shards"]:
    rows = tuple(by_id[v].to_row() for v in shard["videos"] if v in by_id)
    jobs.append(ShardJob(video_id=shard["name"], path=str(out / shard["name"]), rows=rows))
  return jobs


# ------------------------------------------------------------------------------ the shard task

_TRACKER: Optional[pipeline.FaceTracker] = None
_OPTIONS = PrepareOptions()


def init_worker(options: PrepareOptions, threads: int, verbose: bool) -> None:
  """One face tracker per worker process (MTCNN and FaceMesh load once)."""
  global _TRACKER, _OPTIONS
  logs.setup(verbose)
  import cv2
  cv2.setNumThreads(threads)
  _OPTIONS = options
  _TRACKER = pipeline.FaceTracker(options.tracker, threads=threads)


def _track_audio(record: datasets_base.VideoRecord, track) -> Optional[np.ndarray]:
  """The audio a track's record carries: its own, an enrichment span, or none."""
  if not record.has_audio:
    return None
  if not record.audio_path:
    return track.audio
  length = len(track.timestamps)
  duration = length / track.fps
  if record.audio_duration is not None:
    duration = min(duration, record.audio_duration)
  audio = enrichment.read_audio_span(record.audio_path, record.audio_start, duration)
  return pipeline.fit_length(audio, pipeline.audio_samples(length, track.fps))


def source_audio_codec(path, audio: Optional[np.ndarray]) -> dict:
  """Records v2's audio/codec, audio/frame_size, audio/tail and audio/pcm_scale for a track
  whose audio is the first `len(audio)` samples of `path`'s audio: the tail is what the source
  decodes after them, up to the end of that codec frame (the released FakeOut wav of the track
  holds it), and the PCM goes on that wav's 16-bit grid."""
  if audio is None:
    return {}
  codec, frame_size, channels = video.audio_codec(path)
  fields = {"audio_codec": codec, "audio_frame_size": frame_size,
            "audio_pcm_scale": records.released_pcm_scale(channels)}
  length = len(audio)
  end = -(-length // frame_size) * frame_size if frame_size else length
  if end > length:
    sample_rate = constants.SAMPLE_RATE
    fields["audio_tail"] = video.read_audio(path, start=length / sample_rate,
                                            end=end / sample_rate)
  return fields


def track_records(record: datasets_base.VideoRecord, tracks: list,
                  jpeg_quality: int = records.JPEG_QUALITY) -> list[bytes]:
  """Serialized records of one video's tracks."""
  out = []
  for track in tracks:
    audio = _track_audio(record, track)
    # An enrichment span comes from another file: its codec says nothing of the track's wav.
    codec = source_audio_codec(record.video_path, audio) if not record.audio_path else {}
    arrays = records.TrackArrays(
        frames_224=track.frames_224, frames_112=track.frames_112,
        timestamps=track.timestamps, detected=track.detected, fps=track.fps,
        landmarks=track.landmarks_224, transforms=track.transforms_224,
        transforms_112=track.transforms_112, audio=audio, audio_start_time=0.0, **codec)
    meta = records.TrackMetadata(
        video_id=record.video_id, dataset=record.dataset, label=record.label,
        split=record.split, video_path=record.video_path, category=record.category,
        method=record.method, identity=record.identity, source_id=record.source_id,
        target_id=record.target_id, track_index=track.track_index, num_tracks=len(tracks),
        track_name=track.name,
        width=int(track.source_size[0]), height=int(track.source_size[1]))
    out.append(records.serialize_track(arrays, meta, jpeg_quality))
  return out


def process_video(record: datasets_base.VideoRecord) -> tuple[dict, list[bytes]]:
  """Tracks one video; returns its manifest line and its serialized records (never raises)."""
  start = time.perf_counter()
  entry = {"input": record.video_id, "path": record.video_path, "label": record.label,
           "category": record.category, "status": "error", "reason": None, "message": None,
           "tracks": []}
  serialized = []
  try:
    if record.extra.get("video_kind") == "image_sequence":
      raise video.VideoError(record.video_path, "is a folder of frames; convert it to a video"
                             " file first (e.g. ffmpeg -framerate 25 -i %03d.jpg out.mp4)")
    tracks = _TRACKER.track(record.video_path, video_id=record.video_id)
    serialized = track_records(record, tracks, _OPTIONS.jpeg_quality)
    entry.update(status="ok", tracks=[{"name": t.name, "frames": t.num_frames,
                                       "detected_fraction": round(t.detected_fraction, 3),
                                       "has_audio": t.has_audio} for t in tracks])
  except pipeline.NoFaceError as e:
    entry.update(status="no_face", reason=e.reason, message=str(e))
  except video.VideoError as e:
    entry.update(reason=getattr(e, "reason", "video_error"), message=str(e))
  except Exception as e:  # noqa: BLE001 - one bad video must not stop its shard
    entry.update(reason="internal_error", message=f"{type(e).__name__}: {e}",
                 traceback=traceback.format_exc(limit=6))
  entry["seconds"] = round(time.perf_counter() - start, 3)
  return entry, serialized


def process_shard(job: ShardJob, out_dir: str = "") -> dict:
  """Writes one shard (atomically) and returns a manifest entry holding its videos' lines."""
  del out_dir  # the job's path says where
  start = time.perf_counter()
  videos, written = [], {}
  try:
    with records.ShardWriter(job.path) as writer:
      for row in job.rows:
        entry, serialized = process_video(datasets_base.VideoRecord.from_row(row))
        for record in serialized:
          writer.write(record)
        videos.append(entry)
    status = "ok"
    message = None
    written = {"records": writer.count, "size": writer.size, "sha256": writer.sha256}
  except Exception as e:  # noqa: BLE001 - e.g. the disk is full: recorded, shard redone later
    status, message = "error", f"{type(e).__name__}: {e}"
  return {"input": job.video_id, "path": job.path, "status": status, "message": message,
          "videos": videos, **written, "pid": os.getpid(),
          "seconds": round(time.perf_counter() - start, 3)}


# ------------------------------------------------------------------------------------- runners


JOURNAL = ".shards.jsonl"
LOCK = ".prepare.lock"


class Journal:
  """The append-only shard journal: every attempt of every shard, one fsynced line each."""

  def __init__(self, path: pathlib.Path):
    self.path = path
    self._file = open(path, "a")

  def write(self, entry: dict) -> None:
    self._file.write(json.dumps(entry, sort_keys=True) + "\n")
    self._file.flush()
    os.fsync(self._file.fileno())

  def close(self) -> None:
    self._file.close()


def read_journal(path: pathlib.Path) -> list[dict]:
  """Every attempt in order (a torn last line of a killed run is ignored)."""
  lines = []
  if path.is_file():
    for text in path.read_text().splitlines():
      try:
        entry = json.loads(text)
      except json.JSONDecodeError:
        continue
      if isinstance(entry, dict) and "input" in entry:
        lines.append(entry)
  return lines


def finished_shards(journal: list[dict]) -> dict[str, dict]:
  """Shard name -> its last journaled successful attempt whose file is still what was written."""
  done = {}
  for entry in journal:
    path = pathlib.Path(entry["path"])
    if entry["status"] == "ok" and "size" in entry:
      done[path.name] = entry
    elif entry["status"] != "ok":
      done.pop(path.name, None)
  return {name: e for name, e in done.items()
          if pathlib.Path(e["path"]).is_file()
          and pathlib.Path(e["path"]).stat().st_size == e["size"]}


@contextlib.contextmanager
def exclusive(out: pathlib.Path, wait: bool):
  """Holds an exclusive lock on --out for the whole run (one writer per output folder)."""
  path = out / LOCK
  with open(path, "a+") as handle:
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      handle.seek(0)
      holder = handle.read().strip() or "unknown"
      if not wait:
        raise cli_errors.UserError(
            f"another data.prepare run (pid {holder}) is writing into {out}",
            "wait for it to finish, pass --wait to queue behind it, or use another --out")
      log.info("waiting for the data.prepare run (pid %s) that is writing into %s", holder, out)
      fcntl.flock(handle, fcntl.LOCK_EX)
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)


def remove_stale_partials(out: pathlib.Path) -> int:
  """Deletes ``*.partial`` files of killed runs (call only while holding the lock)."""
  stale = [p for p in out.glob(f"*{records.PARTIAL_SUFFIX}") if p.is_file()]
  for path in stale:
    path.unlink(missing_ok=True)
  if stale:
    log.info("removed %d unfinished shard file(s) of an earlier, interrupted run", len(stale))
  return len(stale)


def run_direct(jobs: list[ShardJob], out: pathlib.Path, options: PrepareOptions, workers: int,
               verbose: bool) -> list[dict]:
  journal = Journal(out / JOURNAL)
  try:
    with logs.progress(total=len(jobs), desc="prepare", unit="shard") as progress:
      return facetrack_cli.run(jobs, out, options, workers=workers, manifest=journal,
                               verbose=verbose, progress=progress, task=process_shard,
                               initializer=init_worker)
  finally:
    journal.close()


def run_beam(jobs: list[ShardJob], out: pathlib.Path, options: PrepareOptions,
             beam_args: Sequence[str]) -> list[dict]:
  """The same shard task as a Beam pipeline; results come back through text files."""
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions

  class ShardDoFn(beam.DoFn):
    def setup(self):
      init_worker(options, threads=1, verbose=False)

    def process(self, job):
      yield json.dumps(process_shard(job))

  results_prefix = out / ".beam" / "results"
  pipeline_options = PipelineOptions(list(beam_args))
  explicit_mode = any(a.startswith("--direct_running_mode") for a in beam_args)
  if (pipeline_options.get_all_options().get("direct_num_workers") or 1) > 1 and not explicit_mode:
    # --direct_num_workers N alone means N local worker processes (Beam's multi-processing
    # direct runner); Beam's default mode would run one worker in this process.
    pipeline_options = PipelineOptions([*beam_args, "--direct_running_mode=multi_processing"])
  if pipeline_options.get_all_options().get("direct_running_mode") == "multi_processing":
    # The worker processes start `python -m apache_beam...`: they must import this project.
    project = str(pathlib.Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (project, os.environ.get("PYTHONPATH")) if p)
  with beam.Pipeline(options=pipeline_options) as p:
    _ = (p | "Shards" >> beam.Create(jobs) | "Reshuffle" >> beam.Reshuffle()
         | "Track+write" >> beam.ParDo(ShardDoFn())
         | "Results" >> beam.io.WriteToText(str(results_prefix), file_name_suffix=".jsonl"))
  results = []
  journal = Journal(out / JOURNAL)
  try:
    for path in sorted((out / ".beam").glob("results*.jsonl")):
      for line in path.read_text().splitlines():
        if line.strip():
          results.append(json.loads(line))
          journal.write(results[-1])
      path.unlink()
  finally:
    journal.close()
  return results


# ------------------------------------------------------------------------------------ manifest


def rebuild_manifest(path: pathlib.Path, jobs: list[ShardJob],
                     journal: list[dict]) -> dict[str, dict]:
  """Per-video lines of the planned shards from the whole journal (every attempt of every run).

  A video's line is its latest attempt's; errors of earlier attempts stay in its
  ``previous_errors``. Videos of shards never attempted are absent (the summary counts them as
  incomplete shards).
  """
  names = {pathlib.Path(job.path).name for job in jobs}
  entries: dict[str, dict] = {}
  history: dict[str, list] = collections.defaultdict(list)
  for shard in journal:
    name = pathlib.Path(shard["path"]).name
    if name not in names:
      continue  # another split's shard, or a shard of an older plan
    for entry in shard.get("videos", []):
      if entry["status"] == "error":
        history[entry["input"]].append({"reason": entry.get("reason"),
                                        "message": entry.get("message"), "shard": name})
      entries[entry["input"]] = dict(entry, shard=name)
  for video_id, entry in entries.items():
    earlier = history[video_id][:-1] if entry["status"] == "error" else history[video_id]
    if earlier:
      entry["previous_errors"] = earlier
  temporary = path.with_suffix(".tmp")
  temporary.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries.values()))
  os.replace(temporary, path)
  return entries


def summarise(entries: dict[str, dict], jobs: list[ShardJob], out: pathlib.Path,
              split: str, complete: dict[str, dict],
              tracker: Optional[pipeline.TrackerOptions] = None) -> dict:
  status = collections.Counter(e["status"] for e in entries.values())
  labels = collections.Counter(str(e["label"]) for e in entries.values() if e["status"] == "ok")
  categories = collections.Counter(e["category"] for e in entries.values()
                                   if e["status"] == "ok")
  tracks = sum(len(e["tracks"]) for e in entries.values())
  summary = {
      "split": split, "schema_version": records.SCHEMA_VERSION, "videos": len(entries),
      "status": dict(status), "tracks": tracks, "videos_per_label": dict(labels),
      "videos_per_category": dict(categories),
      "shards_complete": sum(pathlib.Path(j.path).name in complete for j in jobs),
      "shards": len(jobs),
      "records": sum(complete[pathlib.Path(j.path).name].get("records", 0) for j in jobs
                     if pathlib.Path(j.path).name in complete),
      "errors": {k: e["reason"] for k, e in entries.items() if e["status"] == "error"},
      "errors_in_earlier_attempts": sum(len(e.get("previous_errors", []))
                                        for e in entries.values()),
  }
  if tracker is not None:   # the face tracker's choices that change which faces are kept
    summary["tracker"] = {"people_count": tracker.people_count, "stride": tracker.stride,
                          "schedule": tracker.schedule, "detector": tracker.detector,
                          "max_faces": tracker.max_faces}
  (out / f"{split}.summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
  return summary


def prepare(dataset: str, root: str, split: str, out: pathlib.Path, *,
            dataset_options: Optional[dict] = None, options: PrepareOptions = PrepareOptions(),
            workers: int = 1, videos_per_shard: int = 32, runner: str = "direct",
            beam_args: Sequence[str] = (), limit: Optional[int] = None,
            audio_plan: Optional[str] = None, verbose: bool = False, wait: bool = False) -> dict:
  """Library form of the command; returns the summary (see the module docstring).

  Raises data.cli_errors.UserError for a bad dataset, root, split, option or output folder, and
  when another run holds --out (unless `wait`).
  """
  try:
    listing = datasets.list_videos(dataset, root, split, dataset_options or {})
  except (ValueError, FileNotFoundError) as e:  # unknown dataset / split / option, bad layout
    raise cli_errors.UserError(str(e), "see python -m data.datasets --help-datasets") from None
  videos = listing.records
  if audio_plan:
    plans = enrichment.read_plan(audio_plan)
    planned = {p.video_id for p in plans}
    unplanned = [r.video_id for r in videos if r.video_id not in planned]
    if unplanned:
      log.warning("%d videos are not in the audio plan %s and keep their own audio (e.g. %s)",
                  len(unplanned), audio_plan, unplanned[:3])
    videos = enrichment.apply_plan(videos, plans)
  videos = sorted(videos, key=lambda r: r.video_id)[:limit]
  if not videos:
    raise cli_errors.UserError(f"the {dataset} adapter found no videos for split {split!r} "
                               f"under {root}", "check --root and --split")
  if runner not in ("direct", "beam"):
    raise cli_errors.UserError(f"runner must be 'direct' or 'beam', got {runner!r}")
  cli_errors.writable_dir(out)
  with exclusive(out, wait):
    remove_stale_partials(out)
    jobs = plan_shards(videos, out, split, videos_per_shard)
    done = finished_shards(read_journal(out / JOURNAL))
    todo = [job for job in jobs if pathlib.Path(job.path).name not in done]
    for job in todo:  # complete-looking but never journaled (killed before its journal line)
      pathlib.Path(job.path).unlink(missing_ok=True)
    log.info("%s/%s: %d videos in %d shards; %d shards to write, %d already done", dataset,
             split, len(videos), len(jobs), len(todo), len(jobs) - len(todo))
    if runner == "direct":
      results = run_direct(todo, out, options, workers, verbose) if todo else []
    else:
      results = run_beam(todo, out, options, beam_args) if todo else []
    for shard in results:
      if shard["status"] != "ok":
        log.error("shard %s failed: %s", shard["input"], shard.get("message"))
    journal = read_journal(out / JOURNAL)
    entries = rebuild_manifest(out / f"{split}.manifest.jsonl", jobs, journal)
    return summarise(entries, jobs, out, split, finished_shards(journal), options.tracker)


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
  parser = argparse.ArgumentParser(
      prog="python -m data.prepare", description=__doc__.split("\n\n")[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument("--dataset", required=True,
                      help=f"dataset adapter: {', '.join(datasets.list_datasets())}")
  parser.add_argument("--root", required=True, help="the dataset's root folder")
  parser.add_argument("--split", required=True, help="split to prepare (adapter-specific)")
  parser.add_argument("--out", required=True, type=pathlib.Path, help="output folder")
  parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                      help="adapter option (see python -m data.datasets --help-datasets)")
  parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                      help="worker processes for --runner direct (0: in this process)")
  parser.add_argument("--videos-per-shard", type=int, default=32)
  parser.add_argument("--runner", choices=("direct", "beam"), default="direct")
  parser.add_argument("--beam-runner", default="DirectRunner",
                      help="Beam runner (DirectRunner, DataflowRunner, FlinkRunner, SparkRunner)")
  parser.add_argument("--max-faces", type=int, default=2)
  parser.add_argument("--stride", type=int, default=3, help="MTCNN on every k-th frame")
  pipeline.add_detection_arguments(parser)
  parser.add_argument("--max-seconds", type=float, default=constants.MAX_SECONDS,
                      help="only the first seconds of each video")
  parser.add_argument("--jpeg-quality", type=int, default=records.JPEG_QUALITY)
  parser.add_argument("--audio-plan", default=None,
                      help="audio enrichment plan CSV (python -m data.datasets.enrichment)")
  parser.add_argument("--limit", type=int, default=None, help="only the first N videos")
  parser.add_argument("--wait", action="store_true",
                      help="when another run is writing into --out, wait for it (default: refuse)")
  parser.add_argument("-v", "--verbose", action="store_true")
  args, beam_args = parser.parse_known_args(argv)
  if args.runner == "direct" and beam_args:
    parser.error(f"unrecognized arguments: {' '.join(beam_args)}")
  if args.videos_per_shard < 1 or args.workers < 0:
    parser.error("--videos-per-shard must be >= 1 and --workers >= 0")
  return args, beam_args


@cli_errors.command
def main(argv=None) -> int:
  args, beam_args = parse_args(argv)
  logs.setup(args.verbose)
  cli_errors.existing(args.root, "--root", "dir")
  cli_errors.writable_dir(args.out)
  if args.audio_plan:
    cli_errors.existing(args.audio_plan, "--audio-plan", "file")
  options = PrepareOptions(
      tracker=pipeline.TrackerOptions(stride=args.stride, max_faces=args.max_faces,
                                      max_seconds=args.max_seconds or None,
                                      people_count=args.people_count,
                                      detector=args.detector, schedule=args.schedule,
                                      keyframe_interval=args.keyframe_interval),
      jpeg_quality=args.jpeg_quality)
  summary = prepare(
      args.dataset, args.root, args.split, args.out.resolve(),
      dataset_options=datasets.parse_options(args.option), options=options,
      workers=args.workers, videos_per_shard=args.videos_per_shard, runner=args.runner,
      beam_args=[f"--runner={args.beam_runner}", *beam_args], limit=args.limit,
      audio_plan=args.audio_plan, verbose=args.verbose, wait=args.wait)
  print(json.dumps({k: v for k, v in summary.items() if k != "errors"}, sort_keys=True))
  for video_id, reason in sorted(summary["errors"].items()):
    print(f"error: {video_id}: {reason} (see {args.split}.manifest.jsonl)", file=sys.stderr)
  incomplete = summary["shards"] - summary["shards_complete"]
  if incomplete:
    print(f"error: {incomplete} shard(s) incomplete; re-run the same command to resume",
          file=sys.stderr)
  return 1 if summary["errors"] or incomplete else 0


if __name__ == "__main__":
  sys.exit(main())
