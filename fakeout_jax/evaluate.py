r"""Evaluates FakeOut on the config's test sets: ``python -m fakeout_jax.evaluate``.

  python -m fakeout_jax.evaluate --config CONFIG --checkpoint CKPT [--out DIR] [--which best]
      [--num-clips 1,3,5,7,9] [--audio-shifts=-1,-0.5,0,0.5,1] [--umap]

CKPT is a finetune workdir (its best or latest checkpoint), a folder written by
``python -m fakeout_jax.convert``, or a FakeOut pickle as released by the authors.

For every test set: per-track scores (mean fake probability over N clips) -> per-video scores
(max over tracks) -> ROC-AUC, AP and accuracy (scikit-learn); per-category AUCs where the set has
several fake categories (FakeAVCeleb, FF++ methods); mean scores per class. A test set's
``drop_categories`` leave videos of those categories out after scoring (DFDC's dog masks,
Table 7). Written under OUT (default: CKPT/eval):

  scores_<set>.csv       one row per track (data.protocols.SCORE_COLUMNS, clip scores, cosine)
  metrics.json           every number, plus the paper-table cells this config fills
  results.md / .csv      this run's table (test sets x AUC, AP, ACC)
  roc_<set>.png          ROC curves (per category) and score histograms
  av_cosine.png          Fig. 4: cosine similarity of the video and audio embeddings per category

Studies (fakeout_jax.studies; the sweeps replace the plain evaluation, --umap adds to it):

  --num-clips N1,N2,..   Fig. 14: the whole evaluation once per number of clips N (the linspace
                         offsets change with N): sweep_num_clips.json, fig14_auc_vs_num_clips.png
  --audio-shifts S1,..   Fig. 13: the whole evaluation once per audio shift of S seconds
                         (input.eval_audio_shift_seconds): sweep_audio_shift.json,
                         fig13_score_vs_audio_shift.png (mean score of the real videos with
                         audio, and AUC, against S)
  --umap                 Fig. 12: a UMAP of the clips' classifier inputs (embeddings) per test
                         set and category, fig12_umap.png and clip_embeddings.npz; needs
                         umap-learn (``pip install umap-learn``), skipped with a message without

A test set that cannot be evaluated (no tracks, one class only, a drop that matched nothing) is
recorded under ``failed`` in the JSON with its reason; the others are still evaluated and the
command exits with status 1 at the end. ``python -m fakeout_jax.tables`` assembles the paper's
tables from several runs' JSON files.
"""
from __future__ import annotations

import collections
import logging
import pathlib
import sys
from typing import Optional, Sequence

import ml_collections

from data import cli_errors
from data import protocols
from data import records
from data import report
from data import workdir as workdir_lib
from fakeout_jax import checkpoints
from fakeout_jax import scoring
from fakeout_jax import state
from fakeout_jax import studies

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# The plain evaluation


def evaluate(config: ml_collections.ConfigDict, checkpoint: str, out: Optional[str] = None,
             which: str = "best", scorer: Optional[scoring.Scorer] = None) -> dict:
  """Evaluates every test set of `config`; returns (and writes) the metrics.

  Raises protocols.EvaluationError after writing everything else when a test set failed.
  """
  files = scoring.test_files(config)
  out_dir = output_dir(checkpoint, out)
  scorer = scorer or scoring.Scorer(config, checkpoint, which)
  results, videos_by_set, failed = scoring.evaluate_sets(scorer, config, files, out_dir)
  for name, videos in videos_by_set.items():
    grouped = "per_category" in results[name]
    protocols.plot_roc_and_histograms(videos, out_dir / f"roc_{name}.png", title=name,
                                      groups="category" if grouped else None)
  plot_av_cosine(videos_by_set, out_dir / "av_cosine.png")
  table = results_table(config, results)
  skipped = skipped_records(config, files)
  total = sum(s["records_skipped"] for s in skipped.values())
  if any(s["corrupt_shards"] for s in skipped.values()):
    table.note = (f"Scored without {total} corrupt record(s) (skipped with "
                  "input.skip_corrupt_records): " + "; ".join(
                      f"{name}: {s['records_skipped']}" for name, s in skipped.items()
                      if s["corrupt_shards"]) + ". See metrics.json.")
    log.warning("%s", table.note)
  table.save(out_dir, "results")
  cells = scoring.paper_cells(config, results)
  scoring.write_json(out_dir / "metrics.json", {
      "checkpoint": str(checkpoint), "config": config.get("name", ""), "results": results,
      "failed": failed, "paper_cells": cells, "records_skipped": total,
      "skipped": skipped})
  print(table.markdown())
  raise_failures(failed)
  return results


def skipped_records(config, files: dict) -> dict:
  """Per test set, the corrupt records the evaluation skipped (only with
  input.skip_corrupt_records; without it a corrupt shard stops the evaluation, naming it)."""
  if not config.input.get("skip_corrupt_records", False):
    return {}
  return {name: records.readable_records(set_files, skip_corrupt=True).report()
          for name, set_files in files.items()}


def output_dir(checkpoint: str, out: Optional[str]) -> pathlib.Path:
  out_dir = pathlib.Path(out or pathlib.Path(checkpoint).with_suffix("") / "eval")
  return cli_errors.writable_dir(out_dir)  # before any scoring


def raise_failures(failed: dict) -> None:
  if failed:
    raise protocols.EvaluationError(
        f"{len(failed)} test set(s) could not be evaluated: " +
        "; ".join(f"{name}: {reason}" for name, reason in failed.items()))


def results_table(config, results: dict) -> protocols.Table:
  rows = {}
  for name, m in results.items():
    if "auc" not in m:
      continue
    rows[name] = {"AUC": m["auc"], "AP": m["ap"], "ACC": m["accuracy"]}
    for category, cm in m.get("per_category", {}).items():
      rows[f"{name} / {category}"] = {"AUC": cm["auc"], "AP": cm["ap"], "ACC": cm["accuracy"]}
  return protocols.Table(f"FakeOut ({config.get('name', '')}): video-level metrics, %",
                         ["AUC", "AP", "ACC"], rows)


def plot_av_cosine(rows_by_set: dict, path: pathlib.Path) -> Optional[pathlib.Path]:
  """Fig. 4: distribution of cos(vid_embd, aud_embd) per category (when the model has both)."""
  groups = collections.defaultdict(list)
  for name, rows in rows_by_set.items():
    for row in rows:
      if "av_cosine" in row and row.get("has_audio", 1):
        groups[f"{name}/{row['category']}"].append(float(row["av_cosine"]))
  if not groups:
    return None
  names = sorted(groups)
  fig, ax = report.figure(figsize=(max(4, 1.2 * len(names)), 3.5))
  ax.boxplot([groups[n] for n in names], tick_labels=names, showmeans=True)
  ax.set(ylabel="cosine(video, audio) embedding", title="Audio-visual agreement per category")
  ax.tick_params(axis="x", rotation=30)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  return path


# ----------------------------------------------------------------------------------------------
# Command line


def run(config, checkpoint: str, out: Optional[str] = None, which: str = "best", *,
        num_clips: Sequence[int] = (), audio_shifts: Sequence[float] = (),
        with_umap: bool = False) -> dict:
  """The command: the plain evaluation, or the requested studies, with one loaded checkpoint."""
  files = scoring.test_files(config)
  out_dir = output_dir(checkpoint, out)
  if audio_shifts:
    studies.check_audio_model(config)
  state.check_model_config(config, checkpoint)  # before any record is decoded
  scorer = scoring.Scorer(config, checkpoint, which)
  summaries = {}
  if num_clips:
    summaries["num_clips"] = studies.num_clips_sweep(scorer, config, files, out_dir, num_clips)
  if audio_shifts:
    summaries["audio_shift"] = studies.audio_shift_sweep(scorer, config, files, out_dir,
                                                         audio_shifts)
  if with_umap:
    studies.umap_figure(scorer, config, files, out_dir)
  if not num_clips and not audio_shifts:
    summaries["results"] = evaluate(config, checkpoint, out, which, scorer=scorer)
  raise_failures({f"{study}: {key}": reason for study, s in summaries.items()
                  if isinstance(s, dict) and "failed" in s
                  for key, reason in s["failed"].items()})
  return summaries


def main(argv) -> None:
  del argv
  from absl import flags
  from data import logs
  FLAGS = flags.FLAGS
  logs.setup(FLAGS.verbose)
  try:
    num_clips = [int(n) for n in FLAGS["num-clips"].value or ()]
    audio_shifts = [float(s) for s in FLAGS["audio-shifts"].value or ()]
  except ValueError as e:
    log.error("--num-clips takes integers and --audio-shifts seconds, comma-separated: %s", e)
    sys.exit(2)
  run(FLAGS.config, FLAGS.checkpoint, FLAGS.out, FLAGS.which, num_clips=num_clips,
      audio_shifts=audio_shifts, with_umap=FLAGS.umap)


def _define_flags():
  from absl import flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "experiment config file", lock_config=True)
  flags.DEFINE_string("checkpoint", None, "finetune workdir, converted folder or FakeOut pickle")
  flags.DEFINE_string("out", None, "output folder (default: CHECKPOINT/eval)")
  flags.DEFINE_enum("which", "best", ["best", "latest"], "workdir checkpoint to evaluate")
  flags.DEFINE_list("num-clips", None, "Fig. 14: evaluate once per number of clips, e.g. 1,3,5")
  flags.DEFINE_list("audio-shifts", None, "Fig. 13: evaluate once per audio shift in seconds, "
                    "e.g. --audio-shifts=-1,-0.5,0,0.5,1")
  flags.DEFINE_bool("umap", False, "Fig. 12: UMAP of clip embeddings (needs umap-learn)")
  flags.DEFINE_bool("verbose", False, "debug logging")
  flags.mark_flags_as_required(["config", "checkpoint"])


def cli():
  """Console-script entry point (errors and exit codes: data.cli_errors). A test set that
  could not be evaluated exits 1 after the others were written."""
  workdir_lib.run_absl_cli(main, _define_flags, user_errors={
      protocols.EvaluationError: 1, state.ConfigError: 2, FileNotFoundError: 2,
      checkpoints.CheckpointError: 2, records.RecordError: 2})


if __name__ == "__main__":
  cli()
