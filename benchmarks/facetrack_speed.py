"""Face tracker speed, agreement with an every-frame baseline, and memory on a long video.

  python benchmarks/facetrack_speed.py [--workdir DIR] [--speed-seconds 10]
                                       [--rss-seconds 60 300] [--out result.json]

1. Speed: a 1280x720 two-person video (real face photos moving with known motion, see
   tests/video_fixtures.py) tracked by this pipeline (default options: MTCNN every 3rd frame
   on frames shrunk to 640 px) and by a baseline that runs MTCNN on every full-resolution
   frame and FaceMesh on every frame, as the original does; same process, models warm, the
   streaming disk path of the command line (mp4 + sidecar written) for both.
2. Agreement: mean distance, in aligned 224x224 pixels, between the two runs' landmarks (all
   478 points and the five alignment points), frame by frame and track by track.
3. Memory: the command line (`python -m data.facetrack --workers 0`) on 720p videos of each
   length in --rss-seconds, each in a fresh process whose resident memory is sampled from
   /proc every 0.5 s: peak and the RSS at each quarter of the run, to show it is flat.

Prints one JSON object (and writes it to --out). Targets (the issue): speed-up >= 3x, mean
aligned-point distance <= 2 px, peak RSS < 1.5 GB and flat in video length.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

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


def track_speed(clip: pathlib.Path, workdir: pathlib.Path) -> dict:
  from data.facetrack import output
  from data.facetrack import pipeline
  fast = pipeline.FaceTracker(pipeline.TrackerOptions(max_seconds=None))
  baseline = pipeline.FaceTracker(
      pipeline.TrackerOptions(stride=1, detect_max_side=None, max_seconds=None),
      detector=fast.detector)
  warm = make_clip(workdir / "warmup.mp4", 1.0)
  for tracker in (fast, baseline):
    output.track_to_files(tracker, warm, "warmup", tempfile.mkdtemp(dir=workdir))
  results = {}
  for name, tracker in (("baseline", baseline), ("fast", fast)):
    out = pathlib.Path(tempfile.mkdtemp(prefix=name, dir=workdir))
    start = time.perf_counter()
    entry = output.track_to_files(tracker, clip, "pair", out)
    seconds = time.perf_counter() - start
    results[name] = {"seconds": round(seconds, 2), "frames": entry["frames"],
                     "frames_per_second": round(entry["frames"] / seconds, 2),
                     "timings": entry["timings"], "tracks": entry["tracks"], "out": str(out)}
  distances = []
  for fast_track, base_track in zip(results["fast"]["tracks"], results["baseline"]["tracks"]):
    a = tracks_lib.load_sidecar(pathlib.Path(results["fast"]["out"]) / fast_track["sidecar"])
    b = tracks_lib.load_sidecar(pathlib.Path(results["baseline"]["out"]) /
                                base_track["sidecar"])
    gap = np.linalg.norm(a.landmarks_224[..., :2] - b.landmarks_224[..., :2], axis=-1)
    five = list(align.FACEMESH_ALIGN_INDICES)
    distances.append({"track": fast_track["name"],
                      "mean_px_all_478": round(float(gap.mean()), 3),
                      "mean_px_alignment_points": round(float(gap[:, five].mean()), 3),
                      "max_frame_mean_px": round(float(gap.mean(axis=1).max()), 3),
                      "detected_fast": fast_track["detected_fraction"],
                      "detected_baseline": base_track["detected_fraction"]})
  return {"video": {"size": list(SIZE), "seconds": results["fast"]["frames"] / constants.FPS,
                    "faces": 2},
          "baseline": {k: v for k, v in results["baseline"].items() if k != "out"},
          "fast": {k: v for k, v in results["fast"].items() if k != "out"},
          "speedup": round(results["fast"]["frames_per_second"] /
                           results["baseline"]["frames_per_second"], 2),
          "aligned_point_distance": distances,
          "tracks_match": len(results["fast"]["tracks"]) == len(results["baseline"]["tracks"])}


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
             "--workers", "0"]
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
  parser.add_argument("--speed-seconds", type=float, default=10.0)
  parser.add_argument("--rss-seconds", type=float, nargs="*", default=[60.0, 300.0],
                      help="lengths of the memory runs (none: skip)")
  parser.add_argument("--out", type=pathlib.Path, default=None)
  args = parser.parse_args(argv)
  args.workdir.mkdir(parents=True, exist_ok=True)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  os.environ.setdefault("GLOG_minloglevel", "2")
  clip = make_clip(args.workdir / f"pair_{args.speed_seconds:g}s.mp4", args.speed_seconds)
  result = {"cpu_count": os.cpu_count(), "speed": track_speed(clip, args.workdir)}
  if args.rss_seconds:
    loop = make_clip(args.workdir / "pair_10s.mp4", 10.0)
    result["memory"] = [measure_rss(make_long(args.workdir / f"pair_{s:g}s_long.mp4", loop, s),
                                    args.workdir) for s in args.rss_seconds]
    peaks = [m["peak_rss_mib"] for m in result["memory"]]
    result["memory_growth_mib"] = round(peaks[-1] - peaks[0], 1)
  text = json.dumps(result, indent=1)
  print(text)
  if args.out:
    args.out.write_text(text + "\n")
  return result


if __name__ == "__main__":
  main()
