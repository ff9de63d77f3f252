"""``python -m data.facetrack VIDEO_OR_DIR --out DIR``: track faces in many videos.

Each input becomes, under --out (mirroring its folder below the input root),
``name.mp4`` + ``name.npz`` (one face) or ``name@part1.mp4`` + ``name@part1.npz``, ... (several),
and one line of ``manifest.jsonl``: status ok / no_face / error, the reason code and message,
the tracks, frame rate, duration and timings. Worker processes (spawned, one MTCNN and
FaceMesh each) take one video at a time; a bad file is recorded and the batch goes on; when a
worker dies (native crash, out of memory) the videos in flight are retried one by one, so only
the one that kills its worker is recorded as failed. A re-run skips inputs that are done
(manifest line ok / no_face with the outputs present, or complete outputs on disk, including
@partN ones) and retries the others, after removing the unfinished ``.partial/<name>.<pid>``
folders of killed runs. The exit status is 1 if any input ended in error, 2 for a usage or
input error (no videos under the source, an --out that is a file or not writable).
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import dataclasses
import datetime
import json
import logging
import multiprocessing
import os
import pathlib
import shutil
import time
import traceback
from concurrent.futures.process import BrokenProcessPool
from typing import Optional

from data import cli_errors
from data import constants
from data import logs
from data import video
from data import workers as workers_lib
from data.facetrack import output
from data.facetrack import pipeline

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv",
                  ".wmv", ".3gp", ".ts")
MANIFEST = "manifest.jsonl"
OPTIONS = "facetrack_options.json"
DONE = ("ok", "no_face")


@dataclasses.dataclass(frozen=True)
class Job:
  video_id: str
  path: str


def find_inputs(source: pathlib.Path, out_dir: Optional[pathlib.Path] = None) -> tuple:
  """(root, jobs): one file, or every video file below a folder (sorted), outputs excluded."""
  if source.is_file():
    return source.parent, [Job(source.stem, str(source))]
  if not source.is_dir():
    raise cli_errors.UserError(f"{source} is neither a video file nor a folder",
                               "give a video file or a folder of videos")
  out_dir = out_dir.resolve() if out_dir is not None else None
  files = sorted(p for p in source.rglob("*")
                 if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                 and output.PARTIAL_DIR not in p.parts
                 and not (out_dir is not None and out_dir in p.resolve().parents))
  return source, [Job(p.relative_to(source).with_suffix("").as_posix(), str(p)) for p in files]


def read_manifest(path: pathlib.Path) -> dict:
  """Last line per input id (a torn last line from a crash is ignored)."""
  lines = {}
  if path.is_file():
    for text in path.read_text().splitlines():
      try:
        entry = json.loads(text)
      except json.JSONDecodeError:
        continue
      if isinstance(entry, dict) and "input" in entry:
        lines[entry["input"]] = entry
  return lines


def is_done(entry: Optional[dict], out_dir: pathlib.Path, video_id: str) -> Optional[dict]:
  """A manifest entry if the input needs no work, else None."""
  if entry is not None and entry.get("status") in DONE:
    files = [t[key] for t in entry.get("tracks", []) for key in ("mp4", "sidecar")]
    if all((out_dir / f).is_file() for f in files):
      return entry
  found = output.existing_outputs(out_dir, video_id)
  if found:
    return {"input": video_id, "status": "ok", "reason": None,
            "message": "outputs already on disk; not re-run",
            "tracks": [{"name": p.relative_to(out_dir).with_suffix("").as_posix(),
                        "mp4": p.relative_to(out_dir).as_posix(),
                        "sidecar": p.with_suffix(".npz").relative_to(out_dir).as_posix()}
                       for p in found]}
  return None


# ---------------------------------------------------------------------------------- workers

_TRACKER = None


def _init_worker(options: pipeline.TrackerOptions, threads: int, verbose: bool) -> None:
  """One tracker per worker process; its MTCNN loads with the first video that needs it."""
  global _TRACKER
  logs.setup(verbose)
  import cv2
  cv2.setNumThreads(threads)
  _TRACKER = pipeline.FaceTracker(options, threads=threads)


def process(job: Job, out_dir: str) -> dict:
  """Tracks one input; always returns a manifest line (never raises for a bad video)."""
  start = time.perf_counter()
  entry = {"input": job.video_id, "path": job.path, "status": "error", "reason": None,
           "message": None, "tracks": [], "fps": constants.FPS, "worker": os.getpid()}
  try:
    entry.update(output.track_to_files(_TRACKER, job.path, job.video_id, out_dir))
    entry["status"] = "ok"
  except pipeline.NoFaceError as e:
    entry.update(status="no_face", reason=e.reason, message=str(e))
  except video.VideoError as e:
    entry.update(reason=e.reason, message=str(e))
  except Exception as e:  # noqa: BLE001 - one bad input must not stop the batch
    entry.update(reason="internal_error", message=f"{type(e).__name__}: {e}",
                 traceback=traceback.format_exc(limit=6))
  entry.setdefault("timings", {})["total_s"] = round(time.perf_counter() - start, 3)
  entry["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
  return entry


# ------------------------------------------------------------------------------------ driver

class Manifest:
  """Appends lines as results arrive (crash-safe); compacts to one line per input at the end."""

  def __init__(self, path: pathlib.Path):
    self.path = path
    self.entries = read_manifest(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    self._file = open(path, "a")

  def write(self, entry: dict) -> None:
    self.entries[entry["input"]] = entry
    self._file.write(json.dumps(entry, sort_keys=True) + "\n")
    self._file.flush()
    os.fsync(self._file.fileno())

  def close(self) -> None:
    self._file.close()
    temporary = self.path.with_suffix(".jsonl.tmp")
    with open(temporary, "w") as f:
      for entry in self.entries.values():
        f.write(json.dumps(entry, sort_keys=True) + "\n")
    os.replace(temporary, self.path)


def run(jobs: list, out_dir: pathlib.Path, options: pipeline.TrackerOptions, *,
        workers: int, manifest: Manifest, verbose: bool = False, progress=None,
        task=process, initializer=_init_worker) -> list:
  """Processes `jobs`; returns their manifest entries (order of completion).

  `task(job, out_dir) -> entry` runs in the workers after `initializer(options, threads,
  verbose)`; both must be importable module-level functions (spawned processes).
  """
  results = []

  def record(entry):
    manifest.write(entry)
    results.append(entry)
    if progress is not None:
      progress.update(1)
      progress.set_postfix_str(f"{entry['input']}: {entry['status']}", refresh=False)

  if workers == 0:  # in this process (debugging, tests)
    initializer(options, max(1, os.cpu_count() or 1), verbose)
    for job in jobs:
      record(task(job, str(out_dir)))
    return results

  threads = max(1, (os.cpu_count() or 1) // workers)
  queue, suspects = collections.deque(jobs), collections.deque()
  while queue or suspects:
    # After a worker died, the videos it may have been running are retried one at a time in a
    # one-worker pool, so the one that kills its worker is found and the others complete.
    isolate = bool(suspects)
    source, width = (suspects, 1) if isolate else (queue, workers)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=width, mp_context=context, initializer=workers_lib.initializer,
        initargs=(os.getpid(), initializer, (options, threads, verbose))) as pool:
      in_flight = {}
      broken = False
      while source or in_flight:
        while source and len(in_flight) < width and not broken:
          job = source.popleft()
          try:
            in_flight[pool.submit(task, job, str(out_dir))] = job
          except BrokenProcessPool:  # a worker died before this submit: the job never ran
            source.appendleft(job)
            broken = True
        if not in_flight:
          break
        done, _ = concurrent.futures.wait(in_flight,
                                          return_when=concurrent.futures.FIRST_COMPLETED)
        for future in done:
          job = in_flight.pop(future)
          try:
            record(future.result())
          except BrokenProcessPool:
            broken = True
            if isolate:
              record({"input": job.video_id, "path": job.path, "status": "error",
                      "reason": "worker_crashed", "tracks": [],
                      "message": f"{job.path}: the worker process died while processing it"
                                 " (native crash or out of memory)"})
            else:
              suspects.append(job)
        if broken:
          for future, job in in_flight.items():   # they share the dead pool's fate
            try:
              record(future.result())
            except BrokenProcessPool:
              suspects.append(job)
          break
  return results


def remove_stale_partials(out_dir: pathlib.Path) -> int:
  """Removes ``.partial/<name>.<pid>`` folders whose process is gone (killed runs)."""
  partial_root = out_dir / output.PARTIAL_DIR
  if not partial_root.is_dir():
    return 0
  removed = 0
  for folder in sorted(partial_root.rglob("*"), reverse=True):
    pid = folder.suffix[1:]
    if (folder.is_dir() and pid.isdigit() and any(p.is_file() for p in folder.iterdir())
        and not _process_alive(int(pid))):  # holds files: a video's folder, not a parent
      shutil.rmtree(folder, ignore_errors=True)
      removed += 1
  for folder in sorted(partial_root.rglob("*"), reverse=True) + [partial_root]:
    if folder.is_dir() and not any(folder.iterdir()):
      folder.rmdir()
  if removed:
    log.info("removed %d unfinished output folder(s) of an earlier, interrupted run", removed)
  return removed


def _process_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _record_options(path: pathlib.Path, options: pipeline.TrackerOptions) -> None:
  """Keeps the settings beside the outputs; warns when a re-run uses different ones."""
  current = dataclasses.asdict(options)
  if path.is_file():
    previous = json.loads(path.read_text())
    if previous != json.loads(json.dumps(current)):
      log.warning("%s: these outputs were made with other settings (%s); inputs already done"
                  " are kept as they are (use --force to redo them)", path, previous)
      return
  path.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog="python -m data.facetrack", description=__doc__.split("\n\n")[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument("source", type=pathlib.Path, help="a video file or a folder of videos")
  parser.add_argument("--out", type=pathlib.Path, required=True, help="output folder")
  parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                      help="worker processes (0: run in this process)")
  parser.add_argument("--max-faces", type=int, default=2, help="at most this many tracks")
  parser.add_argument("--stride", type=int, default=3, help="MTCNN on every k-th frame")
  parser.add_argument("--crop-mode", choices=("static", "follow"), default="static",
                      help="static: one union crop per face (authors); follow: crop follows")
  parser.add_argument("--detect-max-side", type=int, default=640,
                      help="shrink frames to this longer side for MTCNN (0: full size)")
  parser.add_argument("--max-seconds", type=float, default=0,
                      help="only the first seconds of each video (0: all)")
  parser.add_argument("--min-detected-fraction", type=float, default=0.2,
                      help="drop tracks FaceMesh saw in fewer frames than this")
  pipeline.add_detection_arguments(parser)
  parser.add_argument("--manifest", type=pathlib.Path, default=None,
                      help=f"manifest path (default: OUT/{MANIFEST})")
  parser.add_argument("--force", action="store_true", help="re-run inputs that are done")
  parser.add_argument("-v", "--verbose", action="store_true")
  args = parser.parse_args(argv)
  if (args.workers < 0 or args.max_faces < 1 or args.stride < 1 or
      args.keyframe_interval < 1):
    parser.error("--workers must be >= 0, --max-faces, --stride and --keyframe-interval >= 1")
  return args


@cli_errors.command
def main(argv=None) -> int:
  args = parse_args(argv)
  logs.setup(args.verbose)
  options = pipeline.TrackerOptions(
      stride=args.stride, max_faces=args.max_faces, crop_mode=args.crop_mode,
      detect_max_side=args.detect_max_side or None, max_seconds=args.max_seconds or None,
      min_detected_fraction=args.min_detected_fraction, people_count=args.people_count,
      detector=args.detector, schedule=args.schedule, keyframe_interval=args.keyframe_interval)
  out_dir = cli_errors.writable_dir(args.out).resolve()
  if args.manifest is not None:
    cli_errors.writable_file(args.manifest, "--manifest")
  root, jobs = find_inputs(args.source, out_dir)
  if not jobs:
    raise cli_errors.UserError(f"no video files under {args.source} (looked for "
                               f"{', '.join(VIDEO_SUFFIXES)})", "check the folder")
  remove_stale_partials(out_dir)
  manifest = Manifest(args.manifest or out_dir / MANIFEST)
  _record_options(out_dir / OPTIONS, options)
  todo, skipped, seen = [], 0, {}
  for job in jobs:
    if job.video_id in seen:
      manifest.write({"input": job.video_id + pathlib.Path(job.path).suffix, "path": job.path,
                      "status": "error", "reason": "duplicate_name", "tracks": [],
                      "message": f"{job.path}: {seen[job.video_id]} already maps to the output"
                                 f" name {job.video_id!r}; rename one of them"})
      continue
    seen[job.video_id] = job.path
    entry = manifest.entries.get(job.video_id)
    done = None if args.force else is_done(entry, out_dir, job.video_id)
    if done is not None:
      skipped += 1
      if job.video_id not in manifest.entries:
        manifest.write(dict(done, path=job.path))
      continue
    todo.append(job)
  log.info("%d inputs under %s: %d to do, %d already done", len(jobs), root, len(todo), skipped)
  try:
    with logs.progress(total=len(todo), desc="facetrack", unit="video") as progress:
      results = run(todo, out_dir, options, workers=args.workers, manifest=manifest,
                    verbose=args.verbose, progress=progress)
  finally:
    manifest.close()
  failed = [e for e in manifest.entries.values() if e.get("status") == "error"]
  counts = {s: sum(e["status"] == s for e in results) for s in ("ok", "no_face", "error")}
  log.info("done: %s this run, %d skipped; manifest %s", counts, skipped, manifest.path)
  for entry in failed:
    log.error("%s: %s (%s)", entry["input"], entry.get("reason"), entry.get("message"))
  return 1 if failed else 0
