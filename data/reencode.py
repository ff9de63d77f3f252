r"""Re-encodes a dataset tree at a lower quality (the compression study of the inconsistency paper).

  python -m data.reencode --root FakeAVCeleb_v1.2 --out FakeAVCeleb_v1.2_LQ --quality lq \
      [--workers 2]

Qualities (Tian et al., Table 3):

* ``hq``: H.264 at CRF 23, the audio at its original sample rate (AAC);
* ``lq``: H.264 at CRF 40, the audio resampled to 16 kHz (AAC).

Every video under --root (data.datasets.base.VIDEO_SUFFIXES) is decoded at its own frame rate
and written to the same relative path under --out; every other file (meta_data.csv, ground-
truth sidecars, split lists) is copied, so the dataset adapters read the copy as they read the
original, and ``python -m data.prepare`` turns it into records for the evaluation. Odd frame
sizes lose their last row / column (H.264's 4:2:0 needs even sizes).

A video that fails is recorded in ``<out>/reencode.manifest.jsonl`` and skipped; the exit status
is 1 if any failed. Finished outputs are kept on a re-run (written under a temporary name and
renamed), so an interrupted run resumes.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import logging
import os
import pathlib
import shutil
import sys
from typing import Optional

from data import cli_errors
from data import logs
from data import video
from data import video_writer
from data import workers as workers_lib

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
# Containers that hold H.264 + AAC; a .webm cannot and is reported as a failure.
_H264_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


@dataclasses.dataclass(frozen=True)
class Quality:
  crf: int
  audio_sample_rate: Optional[int]  # None: keep the source's


QUALITIES = {"hq": Quality(crf=23, audio_sample_rate=None),
             "lq": Quality(crf=40, audio_sample_rate=16_000)}


def reencode_video(source: str | pathlib.Path, target: str | pathlib.Path,
                   quality: Quality) -> dict:
  """Writes `source` re-encoded at `quality` to `target` (an .mp4); returns what was done."""
  source, target = pathlib.Path(source), pathlib.Path(target)
  if target.suffix.lower() not in _H264_SUFFIXES:
    raise ValueError(f"{target.suffix} cannot hold H.264 + AAC; convert the source to .mp4")
  info = video.probe(source)
  fps = info.source_fps or 25.0
  rate = quality.audio_sample_rate or info.audio_sample_rate
  audio = video.read_audio(source, sample_rate=rate) if info.has_audio else None
  target.parent.mkdir(parents=True, exist_ok=True)
  partial = target.with_name(target.stem + ".partial" + target.suffix)
  width, height = info.width - info.width % 2, info.height - info.height % 2
  frames = 0
  with video_writer.VideoWriter(partial, fps=fps, size=(width, height),
                                sample_rate=rate if audio is not None else None,
                                crf=quality.crf) as writer:
    for frame in video.iter_frames(source, fps=fps):
      writer.write_frame(frame.image[:height, :width])
      frames += 1
    if audio is not None and len(audio):
      writer.write_audio(audio)
  partial.replace(target)
  return {"frames": frames, "fps": fps, "audio_sample_rate": rate if audio is not None else None}


def _job(args) -> dict:
  source, target, quality = args
  entry = {"input": str(source), "output": str(target), "status": "ok"}
  try:
    entry.update(reencode_video(source, target, quality))
  except Exception as e:  # noqa: BLE001 - one bad video must not stop the others
    entry.update(status="error", message=f"{type(e).__name__}: {e}")
  return entry


def reencode_tree(root: pathlib.Path, out: pathlib.Path, quality: str, workers: int = 1) -> int:
  """Mirrors `root` into `out` at `quality`; returns the number of failed videos."""
  if quality not in QUALITIES:
    raise ValueError(f"quality must be one of {sorted(QUALITIES)}, got {quality!r}")
  root, out = pathlib.Path(root), pathlib.Path(out)
  if not root.is_dir():
    raise FileNotFoundError(f"--root {root} is not a folder")
  if out.resolve() == root.resolve() or root.resolve() in out.resolve().parents:
    raise ValueError(f"--out {out} must lie outside --root {root}")
  jobs = []
  for path in sorted(p for p in root.rglob("*") if p.is_file()):
    target = out / path.relative_to(root)
    if path.suffix.lower() in VIDEO_SUFFIXES:
      if not target.exists():
        jobs.append((path, target, QUALITIES[quality]))
    elif not target.exists():
      target.parent.mkdir(parents=True, exist_ok=True)
      shutil.copy2(path, target)
  log.info("%d videos to re-encode at %s (%s)", len(jobs), quality, QUALITIES[quality])
  out.mkdir(parents=True, exist_ok=True)
  failed = 0
  from tqdm import tqdm
  with open(out / "reencode.manifest.jsonl", "a") as manifest:
    pool = None
    if workers > 1:
      pool = concurrent.futures.ProcessPoolExecutor(
          workers, initializer=workers_lib.initializer, initargs=(os.getpid(),))
    results = pool.map(_job, jobs) if pool else map(_job, jobs)
    for entry in tqdm(results, total=len(jobs), desc=f"reencode {quality}", unit="video"):
      manifest.write(json.dumps(entry) + "\n")
      if entry["status"] != "ok":
        failed += 1
        log.warning("%s: %s", entry["input"], entry["message"])
    if pool:
      pool.shutdown()
  return failed


@cli_errors.command
def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m data.reencode",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--root", required=True, type=pathlib.Path, help="dataset folder")
  parser.add_argument("--out", required=True, type=pathlib.Path, help="output folder")
  parser.add_argument("--quality", required=True, choices=sorted(QUALITIES))
  parser.add_argument("--workers", type=int, default=1)
  parser.add_argument("--verbose", action="store_true")
  args = parser.parse_args(argv)
  logs.setup(args.verbose)
  cli_errors.existing(args.root, "--root", "dir")
  cli_errors.writable_dir(args.out)
  try:
    failed = reencode_tree(args.root, args.out, args.quality, args.workers)
  except (ValueError, FileNotFoundError) as e:
    raise cli_errors.UserError(str(e)) from None
  if failed:
    log.error("%d video(s) failed; see %s", failed, args.out / "reencode.manifest.jsonl")
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
