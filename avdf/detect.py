r"""One command, one verdict: both detectors on the same face tracks, fused and calibrated.

  python -m avdf.detect VIDEO_OR_DIR [...] [--list FILE] --fakeout CKPT --inconsistency WORKDIR
      [--calibration calibration.json] --out DIR [--workers N] [--max-faces N] [--top-k K]
  python -m avdf.detect calibrate --records VAL [...] --fakeout CKPT --inconsistency WORKDIR
      --out calibration.json [--method logistic|isotonic] [--threshold 0.5]
  python -m avdf.detect evaluate --records TEST [...] --fakeout CKPT --inconsistency WORKDIR
      --calibration calibration.json --out DIR [--ground-truth CSV [--ground-truth-column kind]]

detect: every video is decoded and face-tracked ONCE (data.facetrack, in worker processes),
both detectors score the same tracks (FakeOut per clip, the inconsistency detector per window),
and each face's scores become one fake probability through the calibration; a video is as
fake as its most suspicious face. Writes results.csv (a row per video and face), results.jsonl,
reports/<video>.html (self-contained), index.html (sortable) and manifest.jsonl (a reason for
every failure); re-running resumes. Without --calibration the raw scores are reported and no
probability or verdict is given. Exit status 1 when any video got no result (error or no face).

calibrate: scores a labelled record set (data.prepare's TFRecord shards; use validation
identities, never the test set) with both detectors and fits the per-face calibration
(scikit-learn logistic regression, or isotonic regression on its log-odds); the file keeps the
fit, the scored faces and the reliability on them.

evaluate: AUC / AP of each detector alone and fused, overall, per category and per synthetic
kind (--ground-truth, e.g. data.synth's synthetic_ground_truth.csv), the expected calibration
error and a reliability diagram (metrics.json, results.md, reliability.png, scores.csv).

--fakeout CKPT: a FakeOut finetune workdir, converted folder or released pickle.
--inconsistency WORKDIR: a workdir of python -m inconsistency_jax.train.
"""
from __future__ import annotations

import argparse
import csv
import logging
import pathlib
import sys
from typing import Optional, Sequence

from data.cli_errors import UserError

log = logging.getLogger(__name__)

SUBCOMMANDS = ("calibrate", "evaluate")


# ----------------------------------------------------------------------------------- parsers


def _detector_flags(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--fakeout", metavar="CKPT",
                      help="FakeOut finetune workdir, converted folder or released pickle")
  parser.add_argument("--fakeout-config", metavar="FILE", default=None,
                      help="FakeOut config file (default: the workdir's config.json)")
  parser.add_argument("--inconsistency", metavar="WORKDIR",
                      help="workdir of python -m inconsistency_jax.train")
  parser.add_argument("--inconsistency-checkpoint", choices=("latest", "best"), default=None,
                      help="which inconsistency checkpoint (default: its config's)")
  parser.add_argument("-v", "--verbose", action="store_true")


def _records_flags(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--records", nargs="+", metavar="SHARDS",
                      help="record set(s): folders of TFRecord shards, shard files or globs")
  parser.add_argument("--scores", metavar="CSV", default=None,
                      help="face scores written by an earlier calibrate/evaluate (scores.csv) "
                           "instead of --records and the checkpoints")


def detect_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m avdf.detect", description=__doc__.split("\n\n")[0],
      epilog="subcommands: `python -m avdf.detect calibrate --help`, "
             "`python -m avdf.detect evaluate --help`")
  parser.add_argument("inputs", nargs="*", metavar="VIDEO_OR_DIR",
                      help="video files and/or folders (searched recursively)")
  parser.add_argument("--list", metavar="FILE", default=None,
                      help="a text file of video paths, one a line (relative ones to the "
                           "file's folder); with or instead of VIDEO_OR_DIR")
  _detector_flags(parser)
  parser.add_argument("--calibration", metavar="FILE", default=None,
                      help="calibration.json of `calibrate` (without it: raw scores only)")
  parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
  parser.add_argument("--workers", type=int, default=None,
                      help="tracking worker processes (default: 1; 0 = track in this "
                           "process, no overlap)")
  parser.add_argument("--max-faces", type=int, default=None,
                      help="at most this many faces per video (default: the tracker's, 2)")
  parser.add_argument("--people-count", choices=("robust", "faithful"), default="robust",
                      help="how the tracker counts the people of a video (data.facetrack): "
                           "robust (default; ignores small background faces) or faithful "
                           "(the authors' rule, data.prepare's default)")
  parser.add_argument("--top-k", type=int, default=3,
                      help="least consistent windows shown per face")
  return parser


def calibrate_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m avdf.detect calibrate",
      description="Fits the per-face calibration (detector scores -> fake probability) on a "
                  "labelled validation record set.")
  _records_flags(parser)
  _detector_flags(parser)
  parser.add_argument("--out", required=True, metavar="FILE", help="calibration.json to write")
  parser.add_argument("--method", choices=("logistic", "isotonic"), default="logistic")
  parser.add_argument("--threshold", type=float, default=0.5,
                      help="fake probability at or above which the verdict is 'fake'")
  parser.add_argument("--selection", choices=("cross_validated", "lowest", "all"),
                      default="cross_validated",
                      help="which detector scores each fit uses: cross_validated (default) "
                           "takes the fewest inputs whose cross-validated log loss on these "
                           "faces is within one standard error of the lowest; lowest takes the "
                           "lowest outright; all uses every score")
  return parser


def evaluate_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m avdf.detect evaluate",
      description="AUC/AP of each detector alone and fused, per category and kind, ECE and a "
                  "reliability diagram, on labelled test record sets.")
  _records_flags(parser)
  _detector_flags(parser)
  parser.add_argument("--calibration", required=True, metavar="FILE",
                      help="calibration.json of `calibrate` (fitted on other identities)")
  parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
  parser.add_argument("--ground-truth", metavar="CSV", default=None,
                      help="CSV keyed by video path with a per-video group column (data.synth's "
                           "synthetic_ground_truth.csv) for the per-kind table")
  parser.add_argument("--ground-truth-column", default="kind")
  return parser


# ---------------------------------------------------------------------------------- helpers


def load_detectors(args, top_k: int = 3):
  """(FakeOut or None, inconsistency or None) from the flags; at least one is required."""
  from avdf import detectors
  if not args.fakeout and not args.inconsistency:
    raise UserError("give --fakeout CKPT and/or --inconsistency WORKDIR (both for fusion)")
  for flag, path in (("--fakeout", args.fakeout), ("--inconsistency", args.inconsistency)):
    if path and not pathlib.Path(path).exists():
      raise UserError(f"{flag} {path}: no such file or folder")
  fakeout = inconsistency = None
  if args.fakeout:
    fakeout = detectors.FakeOutDetector(args.fakeout, args.fakeout_config)
  if args.inconsistency:
    inconsistency = detectors.InconsistencyDetector(
        args.inconsistency, args.inconsistency_checkpoint, top_k=top_k)
  return fakeout, inconsistency


SCORE_COLUMNS = ("dataset", "video_id", "track", "label", "category", "method", "has_audio",
                 "fakeout", "intra", "cross", "inconsistency_status")


def write_scores(path: pathlib.Path, rows: Sequence[dict]) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=SCORE_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
      writer.writerow({k: "" if row.get(k) is None else row[k] for k in SCORE_COLUMNS})


def read_scores(path: str) -> list[dict]:
  try:
    with open(path, newline="") as f:
      rows = list(csv.DictReader(f))
  except FileNotFoundError:
    raise UserError(f"--scores {path}: no such file") from None
  if not rows or any(c not in rows[0] for c in SCORE_COLUMNS):
    raise UserError(f"--scores {path} is not a scores.csv of calibrate/evaluate (columns "
                    f"{', '.join(SCORE_COLUMNS)})")
  number = lambda v: float(v) if v not in ("", None) else None
  return [{**r, "track": int(r["track"]), "label": int(r["label"]),
           "has_audio": int(r["has_audio"]), "fakeout": number(r["fakeout"]),
           "intra": number(r["intra"]), "cross": number(r["cross"])} for r in rows]


def scored_rows(args) -> tuple[list[dict], str]:
  """Face rows with both detectors' scores (from --records or --scores) and their source."""
  from avdf import detectors
  from data import records
  if args.scores:
    if args.records:
      raise UserError("give --records or --scores, not both")
    return read_scores(args.scores), args.scores
  if not args.records:
    raise UserError("give --records SHARDS (a labelled record set) or --scores CSV")
  try:
    files = records.list_shards(args.records)
  except FileNotFoundError as e:
    raise UserError(f"--records: {e}") from None
  fakeout, inconsistency = load_detectors(args)
  return (detectors.score_record_sets(files, fakeout, inconsistency),
          detectors.describe_files(files))


def _features(rows: Sequence[dict]) -> list[dict]:
  from avdf import calibration
  return [{"dataset": r["dataset"], "video_id": r["video_id"], "track": r["track"],
           "label": r["label"], "category": r["category"],
           "features": calibration.face_features(r["fakeout"], r["intra"], r["cross"])}
          for r in rows]


# --------------------------------------------------------------------------------- commands


def run_calibrate(argv) -> int:
  from avdf import calibration
  from data import cli_errors
  args = calibrate_parser().parse_args(argv)
  _setup_logs(args.verbose)
  out = cli_errors.writable_file(args.out)
  rows, source = scored_rows(args)
  write_scores(out.with_name(out.stem + "_scores.csv"), rows)
  fitted = calibration.fit(
      _features(rows), method=args.method, threshold=args.threshold,
      selection=args.selection,
      source={"records": source, "file": str(out),
              "fakeout": args.fakeout, "inconsistency": args.inconsistency})
  fitted.save(out)
  full = calibration.subset_key(calibration.FEATURES)
  best = fitted.fits.get(full) or next(iter(fitted.fits.values()))
  print(f"calibration ({args.method}) of {len(rows)} faces written to {out}: "
        f"{len(fitted.fits)} feature subsets fitted; all scores -> "
        f"{calibration.subset_key(best.features)}, ECE on its own data "
        f"{best.reliability['ece']:.3f}"
        + (f"; not fitted: {', '.join(fitted.skipped)}" if fitted.skipped else ""))
  return 0


def run_evaluate(argv) -> int:
  import json
  from avdf import calibration
  from avdf import evaluation
  from data import cli_errors
  from data import report
  args = evaluate_parser().parse_args(argv)
  _setup_logs(args.verbose)
  cal = calibration.Calibration.load(args.calibration)
  groups = None
  if args.ground_truth:
    from data import protocols
    try:
      groups = protocols.read_ground_truth(args.ground_truth, args.ground_truth_column)
    except (OSError, ValueError) as e:
      raise UserError(f"--ground-truth: {e}") from None
  out = cli_errors.writable_dir(args.out)
  rows, source = scored_rows(args)
  write_scores(out / "scores.csv", rows)
  result = evaluation.evaluate(rows, cal, groups)
  videos = result.pop("video_rows")
  result["source"] = {"records": source, "calibration": args.calibration,
                      "calibrated_on": cal.source.get("records", "")}
  (out / "metrics.json").write_text(json.dumps(result, indent=1) + "\n")
  with open(out / "videos.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(videos[0]))
    writer.writeheader()
    writer.writerows(videos)
  table = evaluation.markdown(result)
  (out / "results.md").write_text(table)
  evaluation.reliability_figure(result).savefig(out / "reliability.png", dpi=110)
  report.write(out / "results.html", report.page("Fused detector evaluation", [
      ("", f"<pre>{table}</pre>"),
      ("Reliability", report.img(evaluation.reliability_figure(result), alt="reliability"))]))
  print(table)
  print(f"written to {out}: metrics.json, results.md, reliability.png, videos.csv, scores.csv")
  return 0


def run_detect(argv) -> int:
  from avdf import batch
  from avdf import calibration
  from data import cli_errors
  from data.facetrack import pipeline
  args = detect_parser().parse_args(argv)
  _setup_logs(args.verbose)
  out = cli_errors.writable_dir(args.out)
  inputs = list(args.inputs)
  if args.list:
    listed = cli_errors.existing(args.list, "--list", kind="file")
    inputs += [str(listed.parent / line.strip()) for line in listed.read_text().splitlines()
               if line.strip()]
  if not inputs:
    raise UserError("no input: give VIDEO_OR_DIR arguments or --list FILE")
  try:
    jobs = batch.find_jobs(inputs, out)
  except batch.InputError as e:
    raise UserError(str(e)) from None
  cal = calibration.Calibration.load(args.calibration) if args.calibration else None
  if args.max_faces is not None and args.max_faces < 1:
    raise UserError(f"--max-faces must be >= 1, got {args.max_faces}")
  options = pipeline.TrackerOptions(
      people_count=args.people_count, **({"max_faces": args.max_faces} if args.max_faces else {}))
  workers = args.workers if args.workers is not None else 1
  if workers < 0:
    raise UserError(f"--workers must be >= 0, got {workers}")
  fakeout, inconsistency = load_detectors(args, top_k=args.top_k)
  if cal is None:
    log.warning("no --calibration: raw scores only, no probability and no verdict")
  detector = batch.Detector(out, fakeout, inconsistency, cal, tracking={
      "people_count": options.people_count, "max_faces": options.max_faces,
      "mtcnn_stride": options.stride, "workers": workers})
  entries, stats = batch.run(jobs, detector, workers=workers, options=options,
                             verbose=args.verbose)
  counts = batch.write_tables(jobs, entries, out)
  summary = stats.as_dict()
  from avdf import report
  report.write_json(out / "run_stats.json", summary)
  failed = {k: v for k, v in counts.items() if k != "ok"}
  print(f"{counts.get('ok', 0)} of {len(jobs)} videos judged"
        + (f" ({', '.join(f'{n} {s}' for s, n in failed.items())}: reasons in "
           f"{out / batch.MANIFEST})" if failed else "")
        + f"; this run: {summary['videos']} videos in {summary['wall_s']:.0f} s "
        f"({summary['videos_per_minute']} videos/min), models idle "
        f"{100 * summary['model_idle_fraction']:.0f}% of the time; index: {out / 'index.html'}")
  if len(jobs) == 1 and counts.get("ok"):
    entry = entries[jobs[0].video_id]
    p = entry.get("probability")
    print(f"{jobs[0].path}: {entry['verdict']}"
          + (f", fake probability {p:.3f}" if p is not None else " (uncalibrated)")
          + f"; report: {out / entry['report']}")
  return 1 if failed else 0


def _setup_logs(verbose: bool) -> None:
  from data import logs
  logs.setup(verbose)


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Exit status (data.cli_errors): 0 done, 1 some videos got no result, 2 a usage or input
  error (one line on stderr), 3 a bug (with its traceback)."""
  from avdf import calibration
  from data import cli_errors
  from data import protocols
  argv = list(sys.argv[1:] if argv is None else argv)
  command = run_detect
  if argv and argv[0] in SUBCOMMANDS:
    command = {"calibrate": run_calibrate, "evaluate": run_evaluate}[argv.pop(0)]
  verbose = any(a in ("-v", "--verbose") for a in argv)
  return cli_errors.handle(lambda: command(argv), verbose=verbose, user_errors=(
      calibration.CalibrationError, protocols.EvaluationError, *_checkpoint_errors()))


def _checkpoint_errors() -> tuple:
  """The detectors' 'no such checkpoint / bad config' errors (user mistakes, not bugs)."""
  from fakeout_jax import state
  from inconsistency_jax import inference
  return (FileNotFoundError, state.ConfigError, inference.CheckpointNotFoundError)


if __name__ == "__main__":
  sys.exit(main())
