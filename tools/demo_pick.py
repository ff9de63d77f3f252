"""Picks the demo's example videos from a synthetic set, deterministically, in Python.

  python tools/demo_pick.py first ROOT FOLDER          first .mp4 under ROOT/FOLDER (sorted)
  python tools/demo_pick.py longest ROOT --kind drift --split test
                                                       longest video of that kind and split

ROOT is a data.synth set (FakeAVCeleb layout, with synthetic_ground_truth.csv). Prints one
path; exits 1 with a message naming what was looked for when nothing matches. The demo used
`ls ... | head -n 1` before, which dies of SIGPIPE under `set -o pipefail` on a busy machine.
"""
from __future__ import annotations

import argparse
import csv
import pathlib
import sys

GROUND_TRUTH = "synthetic_ground_truth.csv"


class NothingFound(LookupError):
  pass


def first_video(root: pathlib.Path, folder: str) -> pathlib.Path:
  videos = sorted((root / folder).rglob("*.mp4"))
  if not videos:
    raise NothingFound(f"no .mp4 under {root / folder}")
  return videos[0]


def longest_video(root: pathlib.Path, kind: str, split: str) -> pathlib.Path:
  table = root / GROUND_TRUTH
  if not table.is_file():
    raise NothingFound(f"{table} not found (not a data.synth set?)")
  with open(table, newline="", encoding="utf-8") as f:
    rows = [r for r in csv.DictReader(f) if (r["kind"], r["split"]) == (kind, split)]
  if not rows:
    raise NothingFound(f"no video of kind {kind!r} in split {split!r} in {table}")
  # Ties broken by path so that the pick does not depend on the CSV's row order.
  best = max(rows, key=lambda r: (float(r["seconds"]), r["path"]))
  return root / best["path"]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="what", required=True)
  first = sub.add_parser("first", help="first video under a folder of the set")
  first.add_argument("root", type=pathlib.Path)
  first.add_argument("folder")
  longest = sub.add_parser("longest", help="longest video of a kind and split")
  longest.add_argument("root", type=pathlib.Path)
  longest.add_argument("--kind", required=True)
  longest.add_argument("--split", required=True)
  args = parser.parse_args(argv)
  try:
    if args.what == "first":
      path = first_video(args.root, args.folder)
    else:
      path = longest_video(args.root, args.kind, args.split)
  except NothingFound as e:
    print(f"demo_pick: {e}", file=sys.stderr)
    return 1
  print(path)
  return 0


if __name__ == "__main__":
  sys.exit(main())
