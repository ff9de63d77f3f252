"""Check a dataset root before preparing it: lists the videos an adapter finds.

  python -m data.datasets ffpp --root /data/FaceForensics++ --split test [--option k=v]...
      [--out listing.csv]
  python -m data.datasets --help-datasets        # every dataset, its splits and options

Prints the counts per category and what is missing; exits 1 if the root is not the dataset.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from data import cli_errors
from data import logs
from data.datasets import base
from data import datasets


def _describe() -> str:
  lines = []
  for name in datasets.list_datasets():
    cls = datasets.get_adapter(name)
    lines.append(f"{name}: {cls.title}; splits {', '.join(cls.splits)}")
    lines.append(f"    root: {cls.expected_layout}")
    for option, spec in base.adapter_options(cls).items():
      lines.append(f"    --option {option}=...   ({spec})")
  return "\n".join(lines)


@cli_errors.command
def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m data.datasets", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("dataset", nargs="?", help=f"one of {', '.join(datasets.list_datasets())}")
  parser.add_argument("--root", help="the dataset root, as its official download unpacks")
  parser.add_argument("--split", default="test")
  parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                      help="adapter option, repeatable")
  parser.add_argument("--out", help="write the listing as a CSV manifest")
  parser.add_argument("--help-datasets", action="store_true",
                      help="describe every dataset adapter and exit")
  parser.add_argument("-v", "--verbose", action="store_true")
  args = parser.parse_args(argv)
  if args.help_datasets:
    print(_describe())
    return 0
  if not args.dataset or not args.root:
    parser.error("give a dataset name and --root (or --help-datasets)")
  logs.setup(args.verbose)
  try:
    listing = datasets.list_videos(args.dataset, args.root, args.split,
                                   datasets.parse_options(args.option))
  except (base.DatasetLayoutError, ValueError, FileNotFoundError) as e:
    raise cli_errors.UserError(str(e), "see python -m data.datasets --help-datasets") from None
  print(listing.summary())
  for category, count in listing.counts().items():
    print(f"  {category}: {count}")
  if listing.missing:
    print(f"  missing on disk ({listing.skipped}), e.g.: {', '.join(listing.missing[:5])}")
  if args.out:
    cli_errors.writable_file(args.out)
    base.write_manifest(listing.records, args.out)
    print(f"manifest written to {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
