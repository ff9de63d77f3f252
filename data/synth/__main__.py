"""python -m data.synth --out DIR [--layout fakeavceleb|faceforensics] [--identities N] ...

Writes a synthetic audio-visual deepfake set (see data/synth/__init__.py). The same arguments
and seed always give byte-identical metadata and identical decoded frames.
"""
from __future__ import annotations

import argparse
import logging
import pathlib
import sys

from data import cli_errors
from data import logs
from data.synth import pipeline
from data.synth import identities as identities_lib
from data.synth import layouts

log = logging.getLogger("data.synth")

# Default size per layout: generates in under two minutes on two cores (see the README).
DEFAULT_IDENTITIES = {"fakeavceleb": 8, "faceforensics": 6}
DEFAULT_VIDEOS_PER_IDENTITY = 1
DEFAULT_FAKES_PER_VIDEO = {"fakeavceleb": 3, "faceforensics": 4}


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog="python -m data.synth", description=__doc__.split("\n\n")[1])
  parser.add_argument("--out", type=pathlib.Path, required=True,
                      help="output directory; the dataset root is created inside it")
  parser.add_argument("--layout", choices=layouts.LAYOUTS, default="fakeavceleb",
                      help="which real dataset's layout and metadata to write (default "
                      "fakeavceleb)")
  parser.add_argument("--identities", type=int, default=None,
                      help="number of synthetic identities, split ~70/10/20 train/val/test "
                      "(see --val-fraction) "
                      f"(default {DEFAULT_IDENTITIES['fakeavceleb']} for fakeavceleb, "
                      f"{DEFAULT_IDENTITIES['faceforensics']} for faceforensics)")
  parser.add_argument("--val-fraction", type=float,
                      default=identities_lib.DEFAULT_VAL_FRACTION,
                      help="share of the identities held out for validation, at least 2 from 8"
                      " identities on (default 0.1; test is always ~20 percent, train the rest)")
  parser.add_argument("--videos-per-identity", type=int, default=DEFAULT_VIDEOS_PER_IDENTITY,
                      help="real videos per identity (default 1)")
  parser.add_argument("--fakes-per-video", type=int, default=None,
                      help="fakeavceleb: fakes per real video, kinds rotating over the 8 "
                      f"FakeAVCeleb kinds (default {DEFAULT_FAKES_PER_VIDEO['fakeavceleb']}); "
                      "faceforensics: how many of Deepfakes, FaceSwap, Face2Face, "
                      "NeuralTextures, FaceShifter to make for every pair (default "
                      f"{DEFAULT_FAKES_PER_VIDEO['faceforensics']})")
  parser.add_argument("--seed", type=int, default=0,
                      help="everything follows from it (default 0)")
  parser.add_argument("--min-seconds", type=float, default=2.0,
                      help="shortest video (default 2)")
  parser.add_argument("--max-seconds", type=float, default=10.0,
                      help="longest video (default 10)")
  parser.add_argument("--max-height", type=int, default=720,
                      help="largest frame height; 240p-720p are drawn up to it (default 720)")
  parser.add_argument("--workers", type=int, default=2,
                      help="rendering processes (default 2)")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace an existing dataset root in --out")
  parser.add_argument("--verbose", action="store_true")
  return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> pipeline.Config:
  """The generation request of parsed arguments, with the layout's defaults filled in."""
  fakes = (args.fakes_per_video if args.fakes_per_video is not None
           else DEFAULT_FAKES_PER_VIDEO[args.layout])
  identities = (args.identities if args.identities is not None
                else DEFAULT_IDENTITIES[args.layout])
  return pipeline.Config(
      out=args.out, identities=identities, videos_per_identity=args.videos_per_identity,
      seed=args.seed, layout=args.layout, fakes_per_video=fakes, min_seconds=args.min_seconds,
      max_seconds=args.max_seconds, max_height=args.max_height, workers=args.workers,
      overwrite=args.overwrite, val_fraction=args.val_fraction)


@cli_errors.command(user_errors={pipeline.SynthError: cli_errors.EXIT_USAGE})
def main(argv=None) -> int:
  args = parse_args(argv)
  logs.setup(args.verbose)
  config = build_config(args)
  summary = pipeline.generate(config)
  log.info("wrote %d videos (%d frames) to %s in %.1f s (rendering used %.1f CPU s)",
           summary.videos, summary.frames, summary.root, summary.seconds,
           summary.worker_cpu_seconds)
  if summary.failures:
    log.error("%d video(s) failed; see %s", len(summary.failures),
              summary.root / layouts.FAILURES_FILE)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
