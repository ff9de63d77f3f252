"""Many videos, one pass each: tracking in worker processes, both models in the main process.

Worker processes (spawned; one MTCNN + FaceMesh each) decode and track videos; the main
process holds both models and analyses each tracked video as soon as it arrives, while the
workers already track the next ones (at most `workers + 1` tracked videos wait in memory). The
time the main process spends waiting for a tracked video is measured: that is the models' idle
time (the first wait, while the pipeline fills, is reported apart).

Output folder:
  manifest.jsonl         one line per finished input (last line wins): status ok / no_face /
                         error, a reason code and message for every failure, timings
  reports/<id>.html      self-contained report per video; reports/<id>.json its result
  results.csv            one row per video and face (failed videos: one row with the reason)
  results.jsonl          one line per video (its result without the similarity matrices)
  index.html             every video, sortable, linking to its report
  run_stats.json         this run's throughput and model idle time

A re-run skips inputs whose manifest line is ok or no_face (with the report present) and
retries the others.
"""
from __future__ import annotations

import collections
import concurrent.futures
import csv
import dataclasses
import json
import logging
import multiprocessing
import os
import pathlib
import time
import traceback
from concurrent.futures.process import BrokenProcessPool
from typing import Optional, Sequence

from avdf import analysis
from avdf import detectors
from avdf import report
from data import workers as worker_processes

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
DONE = ("ok", "no_face")
CSV_COLUMNS = ("video_id", "video", "status", "reason", "video_probability", "video_verdict",
               "threshold", "face", "face_probability", "face_verdict", "calibration_fit",
               "fakeout", "intra", "cross", "inconsistency", "inconsistency_status",
               "fakeout_top_clip", "flagged_windows", "has_audio", "num_frames", "report")


class InputError(ValueError):
  """The inputs cannot be processed as given (missing file, clashing names)."""


@dataclasses.dataclass(frozen=True)
class Job:
  video_id: str
  path: str


def find_jobs(inputs: Sequence[str], out_dir: Optional[pathlib.Path] = None) -> list[Job]:
  """Video files and every video below folders; ids are paths relative to the folder given
  (files: relative to their common folder), so equal names in different folders stay apart."""
  from data.facetrack import cli as facetrack_cli
  jobs, files = [], []
  for item in inputs:
    path = pathlib.Path(item)
    if path.is_dir():
      jobs += [Job(j.video_id, j.path) for j in facetrack_cli.find_inputs(path, out_dir)[1]]
    elif path.is_file():
      files.append(path.resolve())
    else:
      raise InputError(f"{item} is neither a video file nor a folder")
  if files:
    root = pathlib.Path(os.path.commonpath([str(f.parent) for f in files]))
    jobs += [Job(f.relative_to(root).with_suffix("").as_posix(), str(f)) for f in files]
  ids = collections.Counter(j.video_id for j in jobs)
  clashes = sorted(i for i, n in ids.items() if n > 1)
  if clashes:
    raise InputError(f"{len(clashes)} inputs share a name ({', '.join(clashes[:3])}); give "
                     "their common parent folder instead")
  if not jobs:
    raise InputError(f"no video files found in {', '.join(inputs)}")
  return jobs


# ---------------------------------------------------------------------------------- workers

_TRACKER = None


def init_worker(options, threads: int, verbose: bool) -> None:
  """One face tracker per worker process (MTCNN and FaceMesh load once)."""
  global _TRACKER
  from data import logs
  from data.facetrack import pipeline
  logs.setup(verbose)
  import cv2
  cv2.setNumThreads(threads)
  _TRACKER = pipeline.FaceTracker(options, threads=threads)


def track_job(job: Job) -> dict:
  """Decodes and tracks one video; never raises for a bad video (the reason is returned)."""
  from data import video
  from data.facetrack import pipeline
  start = time.perf_counter()
  out = {"status": "error", "reason": None, "message": None, "tracks": []}
  try:
    out["tracks"] = _TRACKER.track(job.path, video_id=job.video_id)
    # JPEG-encoding the records here keeps that work off the models' process too
    out["records"] = detectors.serialize_tracks(job.path, job.video_id, out["tracks"])
    out["status"] = "ok"
  except pipeline.NoFaceError as e:
    out.update(status="no_face", reason=e.reason, message=str(e))
  except video.VideoError as e:
    out.update(reason=getattr(e, "reason", "video_error"), message=str(e))
  except Exception as e:  # noqa: BLE001 - one bad video must not stop the batch
    out.update(reason="internal_error", message=f"{type(e).__name__}: {e}",
               traceback=traceback.format_exc(limit=6))
  out["tracking_s"] = round(time.perf_counter() - start, 3)
  return out


# ------------------------------------------------------------------------------------ driver


@dataclasses.dataclass
class RunStats:
  videos: int = 0
  wall_s: float = 0.0
  inference_s: float = 0.0
  idle_s: float = 0.0
  fill_s: float = 0.0
  workers: int = 0

  def as_dict(self) -> dict:
    steady = self.wall_s - self.fill_s
    return {"videos": self.videos, "workers": self.workers, "wall_s": round(self.wall_s, 2),
            "videos_per_minute": round(60 * self.videos / self.wall_s, 2) if self.wall_s else 0,
            "inference_s": round(self.inference_s, 2),
            "model_idle_s": round(self.idle_s, 2),
            "model_idle_fraction": round(self.idle_s / self.wall_s, 4) if self.wall_s else 0,
            "pipeline_fill_s": round(self.fill_s, 2),
            "model_idle_fraction_after_fill": round((self.idle_s - self.fill_s) / steady, 4)
            if steady > 0 else 0}


class Detector:
  """Both models and the calibration; analyses tracked videos and writes their reports."""

  def __init__(self, out_dir: pathlib.Path, fakeout, inconsistency, calibration,
               tracking: Optional[dict] = None):
    self.out_dir = pathlib.Path(out_dir)
    self.fakeout, self.inconsistency, self.calibration = fakeout, inconsistency, calibration
    self.tracking = tracking or {}

  def finish(self, job: Job, tracked: dict) -> dict:
    """The manifest line of one tracked video (its reports written when it has faces)."""
    entry = {"input": job.video_id, "path": job.path, "status": tracked["status"],
             "reason": tracked["reason"], "message": tracked["message"],
             "tracking_s": tracked.get("tracking_s")}
    if "traceback" in tracked:
      entry["traceback"] = tracked["traceback"]
    if tracked["status"] != "ok":
      return entry
    start = time.perf_counter()
    try:
      result = analysis.analyse(job.path, job.video_id, tracked["tracks"], self.fakeout,
                                self.inconsistency, self.calibration, tracked.get("records"))
      result.result["settings"]["tracking"] = self.tracking
      stem = pathlib.Path("reports") / job.video_id
      report.write_json(self.out_dir / f"{stem}.json", result.result)
      report.write_video_report(self.out_dir / f"{stem}.html", result.result, result.media)
      entry.update(report=f"{stem.as_posix()}.html", result=f"{stem.as_posix()}.json",
                   probability=result.result["probability"], verdict=result.result["verdict"],
                   faces=len(result.result["faces"]))
    except Exception as e:  # noqa: BLE001 - recorded in the manifest; the batch goes on
      entry.update(status="error", reason="analysis_error", message=f"{type(e).__name__}: {e}",
                   traceback=traceback.format_exc(limit=8))
    entry["inference_s"] = round(time.perf_counter() - start, 3)
    return entry


def read_manifest(path: pathlib.Path) -> dict:
  from data.facetrack import cli as facetrack_cli
  return facetrack_cli.read_manifest(path)


def is_done(entry: Optional[dict], out_dir: pathlib.Path) -> bool:
  if entry is None or entry.get("status") not in DONE:
    return False
  return entry["status"] == "no_face" or (out_dir / entry.get("report", "")).is_file()


def run(jobs: Sequence[Job], detector: Detector, *, workers: int, options,
        verbose: bool = False) -> tuple[dict, RunStats]:
  """Processes the unfinished jobs; returns (every job's manifest entry, this run's stats)."""
  from data import logs
  out_dir = detector.out_dir
  out_dir.mkdir(parents=True, exist_ok=True)
  manifest_path = out_dir / MANIFEST
  entries = read_manifest(manifest_path)
  todo = [j for j in jobs if not is_done(entries.get(j.video_id), out_dir)]
  if len(todo) < len(jobs):
    log.info("%d of %d videos already done in %s (kept)", len(jobs) - len(todo), len(jobs),
             out_dir)
  stats = RunStats(workers=workers)
  start = time.perf_counter()
  with open(manifest_path, "a") as manifest, \
       logs.progress(total=len(todo), desc="detect", unit="video") as progress:
    def record(entry):
      entries[entry["input"]] = entry
      manifest.write(json.dumps(entry) + "\n")
      manifest.flush()
      stats.videos += 1
      progress.update(1)
      progress.set_postfix_str(f"{entry['input']}: {entry.get('verdict', entry['status'])}",
                               refresh=False)

    def analyse(job, tracked):
      t = time.perf_counter()
      record(detector.finish(job, tracked))
      stats.inference_s += time.perf_counter() - t

    if workers == 0:  # tracking in this process: nothing overlaps (debugging, tests)
      init_worker(options, max(1, os.cpu_count() or 1), verbose)
      for job in todo:
        t = time.perf_counter()
        tracked = track_job(job)
        stats.idle_s += time.perf_counter() - t
        if stats.videos == 0:
          stats.fill_s = stats.idle_s
        analyse(job, tracked)
    else:
      _run_pool(todo, workers, options, verbose, analyse, record, stats)
  stats.wall_s = time.perf_counter() - start
  return entries, stats


def _run_pool(todo, workers, options, verbose, analyse, record, stats) -> None:
  threads = max(1, (os.cpu_count() or 1) // workers)
  queue = collections.deque(todo)
  context = multiprocessing.get_context("spawn")
  while queue:
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=worker_processes.initializer,
        initargs=(os.getpid(), init_worker, (options, threads, verbose))) as pool:
      in_flight = {}
      first = stats.videos == 0

      def refill() -> bool:
        """One more video in flight than workers (a tracked video is ready when the models
        finish); False when a worker died before a submit (that video goes back, unrun)."""
        while queue and len(in_flight) < workers + 1:
          job = queue.popleft()
          try:
            in_flight[pool.submit(track_job, job)] = job
          except BrokenProcessPool:
            queue.appendleft(job)
            return False
        return True

      broken = not refill()
      while in_flight and not broken:
        t = time.perf_counter()
        done, _ = concurrent.futures.wait(in_flight,
                                          return_when=concurrent.futures.FIRST_COMPLETED)
        waited = time.perf_counter() - t
        stats.idle_s += waited
        if first:
          stats.fill_s, first = waited, False
        for future in done:
          job = in_flight.pop(future)
          try:
            tracked = future.result()
          except BrokenProcessPool:
            broken = True
            record({"input": job.video_id, "path": job.path, "status": "error",
                    "reason": "worker_crashed",
                    "message": f"{job.path}: the tracking worker died (native crash or out "
                               "of memory); re-run to retry it"})
            continue
          # the workers track the next videos while the models run on this one
          broken = not refill() or broken
          analyse(job, tracked)
      if broken:
        for future, job in in_flight.items():
          try:
            analyse(job, future.result())
          except BrokenProcessPool:
            record({"input": job.video_id, "path": job.path, "status": "error",
                    "reason": "worker_crashed",
                    "message": f"{job.path}: the tracking worker died while it was in flight"
                               " (native crash or out of memory); re-run to retry it"})


# ------------------------------------------------------------------------------------ tables


def _load_result(out_dir: pathlib.Path, entry: dict) -> Optional[dict]:
  path = out_dir / entry.get("result", "")
  if entry.get("status") != "ok" or not path.is_file():
    return None
  return json.loads(path.read_text())


def write_tables(jobs: Sequence[Job], entries: dict, out_dir: pathlib.Path) -> dict:
  """results.csv, results.jsonl and index.html over every job of the run (old and new)."""
  csv_rows, lines, index = [], [], []
  for job in jobs:
    entry = entries.get(job.video_id)
    if entry is None:
      continue
    result = _load_result(out_dir, entry)
    base = {"video_id": job.video_id, "video": job.path, "status": entry["status"],
            "reason": entry.get("reason") or "", "report": entry.get("report", "")}
    if result is None:
      csv_rows.append(base)
      lines.append({**base, "message": entry.get("message")})
      index.append({**base, "faces": 0, "message": entry.get("message")})
      continue
    light = {**result, "faces": [{k: v for k, v in f.items()
                                  if k not in ("identity_matrix", "cross_matrix")}
                                 for f in result["faces"]]}
    lines.append({**base, **light})
    index.append({**base, "probability": result["probability"], "verdict": result["verdict"],
                  "fakeout_max": result["fakeout_max"],
                  "inconsistency_max": result["inconsistency_max"],
                  "faces": len(result["faces"])})
    for face in result["faces"]:
      top = face.get("fakeout_top_clip")
      windows = [face["windows"][i] for i in face.get("flagged_windows", [])]
      csv_rows.append({
          **base, "video_probability": result["probability"],
          "video_verdict": result["verdict"], "threshold": result["threshold"],
          "face": face["face"], "face_probability": face["probability"],
          "face_verdict": face["verdict"], "calibration_fit": face.get("fit") or "",
          "fakeout": face["fakeout"], "intra": face["intra"], "cross": face["cross"],
          "inconsistency": face["inconsistency"],
          "inconsistency_status": face["inconsistency_status"],
          "fakeout_top_clip": "" if top is None else
          f"{top['start']:.2f}-{top['end']:.2f}s ({top['score']:.3f})",
          "flagged_windows": " ".join(f"{w['start']:.2f}-{w['end']:.2f}s" for w in windows),
          "has_audio": int(face["has_audio"]), "num_frames": face["num_frames"]})
  with open(out_dir / "results.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in csv_rows:
      writer.writerow({k: "" if row.get(k) is None else row.get(k, "") for k in CSV_COLUMNS})
  with open(out_dir / "results.jsonl", "w") as f:
    for line in lines:
      f.write(json.dumps(line) + "\n")
  counts = collections.Counter(e["status"] for e in index)
  subtitle = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
  (out_dir / "index.html").write_text(report.render_index(index, subtitle=subtitle),
                                      encoding="utf-8")
  return dict(counts)
