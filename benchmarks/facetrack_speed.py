"""Face tracker speed per CPU-second, agreement with an every-frame baseline, and memory.

  python benchmarks/facetrack_speed.py [--quick] [--json OUT] [--workdir DIR]
                                       [--speed-seconds 10] [--rss-seconds 60 300]

1. Speed, one process, models warm, the streaming disk path of the command line (mp4 +
   sidecar written), on a 1280x720 two-person video (real face photos moving with known
   motion, see tests/video_fixtures.py), each variant's CPU time (user + system of every
   thread, from getrusage) per frame:
     baseline        MTCNN (the mtcnn package) on every full-resolution frame, FaceMesh on
                     every frame, as the original does;
     faithful_keras  the authors' schedule: MTCNN every 3rd frame (shrunk to 640 px);
     faithful_jax    the same with the JAX MTCNN (data.facetrack.mtcnn_jax);
     keyframe        MTCNN (JAX) every 10th frame and when FaceMesh loses a face, FaceMesh
                     tracking in between.
   The machine is shared: figures are compared as ratios within one run, and the load
   average is recorded before and after.
2. The detector alone: both MTCNN implementations on the same decoded 640x360 frames
   (batches of 8): frames per CPU-second and their ratio (`jax_mtcnn_speedup`).
3. Agreement: mean distance, in aligned 224x224 pixels, between each variant's five alignment
   points (and all 478 landmarks) and the baseline's, frame by frame and track by track; track
   counts.
4. Memory: the command line (`python -m data.facetrack --workers 0 --detector jax --schedule
   keyframe`) on 720p videos of each length in --rss-seconds (--quick: 10 and 20 s, and the
   speed clip is 4 s), each in a fresh process whose resident memory is sampled from /proc
   every 0.5 s: peak and the RSS at each quarter of the run, to show it is flat.

Prints one JSON object (and writes it to --json). Targets (issue 15): JAX MTCNN >= 5x the
package; faithful_jax >= 10x the baseline with points <= 0.5 px from faithful_keras; keyframe
>= 29 frames per CPU-second with points <= 2 px from the baseline and the same track counts;
peak RSS < 1.5 GB, flat in video length.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time
from typing import Optional

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from data import align  # noqa: E402
from data import constants  # noqa: E402
from data import tracks as tracks_lib  # noqa: E402
from tests import video_fixtures as vf  # noqa: E402

SIZE = (1280, 720)
# Two people sitting apart, turning and leaning a little (one 10 s cycle; longer videos loop).
PAIR = (vf.FaceMotion("astronaut", (380, 360, 1.7, -8), (440, 340, 1.9, 8)),
        vf.FaceMotion("hopper", (900, 350, 1.9, 6), (850, 370, 1.75, -6)))


def make_clip(path: pathlib.Path, seconds: float) -> pathlib.Path:
  if not path.exists():
    scene = vf.Scene(SIZE, seconds, PAIR)
    vf.write_scene(path, scene, fps=30, audio=vf.tone(seconds, 48_000))
  return path


def make_long(path: pathlib.Path, clip: pathlib.Path, seconds: float) -> pathlib.Path:
  """Loops `clip` by copying its packets with shifted timestamps (no re-encoding)."""
  import av
  if path.exists():
    return path
  partial = path.with_suffix(".partial.mp4")
  spans = {}                     # per stream: (first dts, last dts + its duration)
  with av.open(str(clip)) as source:
    for packet in source.demux():
      if packet.dts is not None:
        first, end = spans.get(packet.stream.index, (packet.dts, packet.dts))
        spans[packet.stream.index] = (min(first, packet.dts),
                                      max(end, packet.dts + (packet.duration or 0)))
    length = float(source.duration / av.time_base)
  with av.open(str(clip)) as source, av.open(str(partial), "w") as target:
    streams = {s.index: target.add_stream_from_template(s) for s in source.streams}
    for loop in range(int(np.ceil(seconds / length))):
      source.seek(0)
      for packet in source.demux():
        if packet.dts is None:
          continue
        first, end = spans[packet.stream.index]
        shift = loop * (end - first)
        packet.pts += shift
        packet.dts += shift
        packet.stream = streams[packet.stream.index]
        target.mux(packet)
  os.replace(partial, path)
  return path


def _cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


VARIANTS = {
    "baseline": dict(stride=1, detect_max_side=None, detector="keras"),
    "faithful_keras": dict(detector="keras"),
    "faithful_jax": dict(detector="jax"),
    "keyframe": dict(detector="jax", schedule="keyframe"),
}


def _distances(tracks_a: list, out_a: pathlib.Path, tracks_b: list, out_b: pathlib.Path
               ) -> list:
  distances = []
  for a_entry, b_entry in zip(tracks_a, tracks_b):
    a = tracks_lib.load_sidecar(out_a / a_entry["sidecar"])
    b = tracks_lib.load_sidecar(out_b / b_entry["sidecar"])
    gap = np.linalg.norm(a.landmarks_224[..., :2] - b.landmarks_224[..., :2], axis=-1)
    five = list(align.FACEMESH_ALIGN_INDICES)
    distances.append({"track": a_entry["name"],
                      "mean_px_alignment_points": round(float(gap[:, five].mean()), 3),
                      "mean_px_all_478": round(float(gap.mean()), 3),
                      "max_frame_mean_px": round(float(gap.mean(axis=1).max()), 3),
                      "detected": a_entry["detected_fraction"],
                      "detected_reference": b_entry["detected_fraction"]})
  return distances


def _headline(distances: list) -> Optional[float]:
  """The mean over tracks of the alignment points' mean distance (None: no common track)."""
  values = [d["mean_px_alignment_points"] for d in distances]
  return round(float(np.mean(values)), 3) if values else None


def track_speed(clip: pathlib.Path, workdir: pathlib.Path) -> dict:
  from data.facetrack import output
  from data.facetrack import pipeline
  trackers = {}
  detectors = {}
  for name, settings in VARIANTS.items():
    options = pipeline.TrackerOptions(max_seconds=None, **settings)
    trackers[name] = pipeline.FaceTracker(options, detector=detectors.get(options.detector))
    detectors[options.detector] = trackers[name].detector
  warm = make_clip(workdir / "warmup.mp4", 1.0)
  for name, tracker in trackers.items():
    # The JAX detector compiles once per frame size and candidate-count bucket: warm it on the
    # measured clip itself (a long video pays this once); TensorFlow on the short clip.
    source = clip if tracker.options.detector == "jax" else warm
    output.track_to_files(tracker, source, "warmup", tempfile.mkdtemp(dir=workdir))
  results = {}
  for name, tracker in trackers.items():
    out = pathlib.Path(tempfile.mkdtemp(prefix=name, dir=workdir))
    start, cpu = time.perf_counter(), _cpu_seconds()
    entry = output.track_to_files(tracker, clip, "pair", out)
    cpu, seconds = _cpu_seconds() - cpu, time.perf_counter() - start
    results[name] = {"cpu_seconds": round(cpu, 2), "wall_seconds": round(seconds, 2),
                     "frames": entry["frames"],
                     "frames_per_cpu_s": round(entry["frames"] / cpu, 2),
                     "timings": entry["timings"], "tracks": entry["tracks"], "out": out}
  base = results["baseline"]
  agreement = {name: _distances(r["tracks"], r["out"], base["tracks"], base["out"])
               for name, r in results.items() if name != "baseline"}
  agreement["faithful_jax_vs_faithful_keras"] = _distances(
      results["faithful_jax"]["tracks"], results["faithful_jax"]["out"],
      results["faithful_keras"]["tracks"], results["faithful_keras"]["out"])
  for r in results.values():
    r.pop("out")
  return {"video": {"size": list(SIZE), "seconds": base["frames"] / constants.FPS, "faces": 2},
          "variants": results, "aligned_point_distance": agreement,
          "track_counts": {name: len(r["tracks"]) for name, r in results.items()}}


def detector_speed(clip: pathlib.Path, frames: int = 48) -> dict:
  """Both MTCNN implementations on the same decoded 640 px frames, batches of 8."""
  from data import video
  from data.facetrack import detect
  images = [f.image for f in video.iter_frames(clip, max_side=640)][:frames]
  out = {}
  for kind in detect.DETECTORS:
    detector = detect.make_detector(kind)
    for start in range(0, len(images), 8):   # warm: TensorFlow graphs, XLA compilation
      detector.detect(images[start:start + 8])
    cpu = _cpu_seconds()
    for start in range(0, len(images), 8):
      detector.detect(images[start:start + 8])
    out[f"{kind}_frames_per_cpu_s"] = round(len(images) / (_cpu_seconds() - cpu), 2)
  out["frames"] = len(images)
  out["speedup"] = round(out["jax_frames_per_cpu_s"] / out["keras_frames_per_cpu_s"], 2)
  return out


def _status(pid: int) -> dict:
  values = {}
  with open(f"/proc/{pid}/status") as f:
    for line in f:
      key, _, rest = line.partition(":")
      if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
        values[key] = int(rest.split()[0]) / 1024   # MiB
  return values


def measure_rss(video_path: pathlib.Path, workdir: pathlib.Path) -> dict:
  out = pathlib.Path(tempfile.mkdtemp(prefix="rss", dir=workdir))
  command = [sys.executable, "-m", "data.facetrack", str(video_path), "--out", str(out),
             "--workers", "0", "--detector", "jax", "--schedule", "keyframe"]
  start = time.perf_counter()
  process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  samples, peak = [], 0.0
  while process.poll() is None:
    try:
      status = _status(process.pid)
    except (FileNotFoundError, ProcessLookupError):
      break
    if "VmRSS" not in status:      # exiting
      break
    peak = max(peak, status.get("VmHWM", 0.0))
    samples.append((time.perf_counter() - start, status["VmRSS"]))
    time.sleep(0.5)
  seconds = time.perf_counter() - start
  manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
  rss = np.array([s[1] for s in samples]) if samples else np.zeros(1)
  quarters = [round(float(rss[min(len(rss) - 1, int(q * len(rss)))]), 1)
              for q in (0.25, 0.5, 0.75, 0.99)]
  return {"video_seconds": manifest[0].get("duration"), "status": manifest[0]["status"],
          "wall_seconds": round(seconds, 1), "exit_code": process.returncode,
          "peak_rss_mib": round(peak, 1), "rss_mib_at_quarters": quarters,
          "frames_per_second": round(manifest[0].get("frames", 0) / seconds, 2)}


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", type=pathlib.Path,
                      default=pathlib.Path(tempfile.gettempdir()) / "facetrack_benchmark")
  parser.add_argument("--speed-seconds", type=float, default=None,
                      help="length of the speed clip (default 10 s; --quick: 4 s)")
  parser.add_argument("--rss-seconds", type=float, nargs="*", default=None,
                      help="lengths of the memory runs (default 60 300; --quick: 10 20;"
                           " none: skip)")
  parser.add_argument("--quick", action="store_true",
                      help="short clips, no 5-minute video (a few minutes on 2 cores)")
  parser.add_argument("--json", "--out", dest="json", type=pathlib.Path, default=None,
                      help="also write the JSON here")
  args = parser.parse_args(argv)
  speed_seconds = args.speed_seconds or (4.0 if args.quick else 10.0)
  rss_seconds = args.rss_seconds if args.rss_seconds is not None else (
      [10.0, 20.0] if args.quick else [60.0, 300.0])
  args.workdir.mkdir(parents=True, exist_ok=True)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  os.environ.setdefault("GLOG_minloglevel", "2")
  load_before = os.getloadavg()
  clip = make_clip(args.workdir / f"pair_{speed_seconds:g}s.mp4", speed_seconds)
  speed = track_speed(clip, args.workdir)
  detector = detector_speed(clip)
  variants = speed["variants"]
  rate = {name: v["frames_per_cpu_s"] for name, v in variants.items()}
  agreement = speed["aligned_point_distance"]
  result = {
      "baseline_frames_per_cpu_s": rate["baseline"],
      "faithful_keras_frames_per_cpu_s": rate["faithful_keras"],
      "faithful_jax_frames_per_cpu_s": rate["faithful_jax"],
      "keyframe_frames_per_cpu_s": rate["keyframe"],
      "jax_mtcnn_speedup": detector["speedup"],
      "faithful_jax_speedup_over_baseline": round(rate["faithful_jax"] / rate["baseline"], 2),
      "keyframe_speedup_over_baseline": round(rate["keyframe"] / rate["baseline"], 2),
      "keyframe_px_from_baseline": _headline(agreement["keyframe"]),
      "faithful_keras_px_from_baseline": _headline(agreement["faithful_keras"]),
      "faithful_jax_px_from_keras": _headline(agreement["faithful_jax_vs_faithful_keras"]),
      "track_counts": speed["track_counts"],
      "track_counts_match": len(set(speed["track_counts"].values())) == 1,
      "detector": detector,
      "quick": args.quick, "cpu_count": os.cpu_count(),
      "load_average_1_5_15_before": [round(x, 2) for x in load_before],
      "speed": speed,
  }
  peaks = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2]   # this process
  if rss_seconds:
    loop = make_clip(args.workdir / "pair_10s.mp4", 10.0)
    result["memory"] = [measure_rss(make_long(args.workdir / f"pair_{s:g}s_long.mp4", loop, s),
                                    args.workdir) for s in rss_seconds]
    cli_peaks = [m["peak_rss_mib"] / 1024 for m in result["memory"]]
    result["memory_growth_mib"] = round((cli_peaks[-1] - cli_peaks[0]) * 1024, 1)
    peaks = cli_peaks
  # The command line's peak (one tracking process); without memory runs, this benchmark
  # process's own (which holds both detectors and all four trackers).
  result["peak_rss_gib"] = round(max(peaks), 3)
  result["load_average_1_5_15_after"] = [round(x, 2) for x in os.getloadavg()]
  text = json.dumps(result, indent=1)
  print(text)
  if args.json:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(text + "\n")
  return result


if __name__ == "__main__":
  main()
