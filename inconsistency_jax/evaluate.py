r"""Scores test sets with a trained detector and builds the paper's tables and figures.

  python -m inconsistency_jax.evaluate --config inconsistency_jax/configs/default.py \
      --config.data.root=/data/records --workdir runs/inconsistency [--checkpoint best] \
      [--sets fakeavceleb,fakeavceleb_hq]

The model comes from the workdir (its config.json and checkpoint); data sets and evaluation
settings from --config. Under WORKDIR/eval/ (process 0 writes):

  <set>/scores.csv          one row per track: data.protocols' columns (``score`` = -total, higher
                            = more likely fake) + intra, cross, total (lower = less consistent),
                            num_windows, has_audio, motion, status ('too_short' rows unscored)
  <set>/video_scores.csv    one row per video: its least consistent track
  <set>/roc.png             ROC per fake category and score histograms (Intra+Cross)
  table2.md / .csv          eval.table2_set: AUC and AP per category (each against all real
                            videos) and AVG-FV (mean over eval.fake_video_categories), for the
                            rows Intra, Cross and Intra+Cross (the paper's Table 2 layout)
  table3.md / .csv          eval.compression_sets: AUC and AP of the eval.categories fakes
                            against the reals, per quality (RAW = table2 set, then e.g. HQ, LQ)
  kodf.md / .csv            eval.kodf_set: mean +- std AUC over eval.kodf_draws random draws of
                            276 real + 544 fake videos (seed eval.kodf_seed)
  fig4_motion.png / .csv    eval.motion_set: AUC per motion-magnitude quantile bin (Fig. 4)
  table2_by_<column>.md     with eval.ground_truth (a CSV keyed by video path, e.g. data.synth's
                            synthetic_ground_truth.csv): AUC per value of its
                            eval.ground_truth_column (e.g. the synthetic 'kind': rvfa, lipsync,
                            drift, ...), each group's fakes against all reals
  summary.json              every number above, the checkpoint, counts of unscored tracks

Videos are scored by their least consistent track; for the Intra and Cross rows the same
is done with that sub-score alone (tracks without audio have no Cross score and are left out
of the Cross row, counted in summary.json).
"""
from __future__ import annotations

import csv
import json
import logging
import math
import pathlib
from typing import Optional, Sequence

import jax
import ml_collections
import numpy as np

from data import constants
from data import protocols
from data import workdir as workdir_lib
from inconsistency_jax import inference

log = logging.getLogger(__name__)

SCORE_ROWS = {"Intra": "intra", "Cross": "cross", "Intra+Cross": "total"}


# ----------------------------------------------------------------------------------------------
# Scores


def score_set(scorer: inference.Scorer, config, name: str, out_dir: pathlib.Path) -> list[dict]:
  """Scores one test set; writes scores.csv (this process's tracks, all when single-host)."""
  path = inference.record_set(config, config.data.test[name])
  rows = [t.row() for t in scorer.score_source(path)]
  if jax.process_count() > 1:
    rows = _gather_rows(rows)
  if jax.process_index() == 0:
    protocols.write_scores(out_dir / name / "scores.csv", rows)
  short = sum(r["status"] != "ok" for r in rows)
  log.info("%s: %d tracks scored, %d too short (fewer than 2 windows)", name, len(rows) - short,
           short)
  return rows


def _gather_rows(rows: list[dict]) -> list[dict]:
  """All hosts' rows on every host (JSON through a byte all-gather)."""
  from jax.experimental import multihost_utils
  payload = np.frombuffer(json.dumps(rows, default=float).encode(), np.uint8)
  size = int(np.max(multihost_utils.process_allgather(np.array([payload.size]))))
  padded = np.zeros([size], np.uint8)
  padded[:payload.size] = payload
  gathered = multihost_utils.process_allgather(padded)
  out = []
  for chunk in np.asarray(gathered):
    out += json.loads(bytes(chunk).rstrip(b"\0").decode())
  return out


def video_rows(track_rows: Sequence[dict], column: str = "total") -> list[dict]:
  """One row per video with score = -column of its least consistent track (scored tracks with
  a value in `column` only)."""
  usable = []
  for row in track_rows:
    value = row.get(column)
    if row.get("status", "ok") != "ok" or value in ("", None):
      continue
    value = float(value)
    if math.isnan(value):
      continue
    usable.append({**row, "score": -value})
  return protocols.video_scores(usable) if usable else []


# ----------------------------------------------------------------------------------------------
# Tables


def category_table(track_rows, categories: Sequence[str], fake_video: Sequence[str],
                   title: str) -> tuple[protocols.Table, dict]:
  """Table 2: AUC / AP per category and AVG-FV, one row per score."""
  columns = [f"{c} {m}" for c in (*categories, "AVG-FV") for m in ("AUC", "AP")]
  table, numbers = {}, {}
  for row_name, column in SCORE_ROWS.items():
    videos = video_rows(track_rows, column)
    values, metrics = {}, {}
    present = [c for c in categories if any(v["category"] == c for v in videos)]
    try:
      metrics = protocols.per_category_metrics(videos, present)
    except protocols.EvaluationError as e:
      log.warning("%s: %s", row_name, e)
    for category, m in metrics.items():
      values[f"{category} AUC"], values[f"{category} AP"] = m.auc, m.ap
    averaged = [metrics[c] for c in fake_video if c in metrics]
    if averaged:
      values["AVG-FV AUC"] = float(np.mean([m.auc for m in averaged]))
      values["AVG-FV AP"] = float(np.mean([m.ap for m in averaged]))
    table[row_name] = values
    numbers[row_name] = {**values, "videos": len(videos),
                         "counts": {c: [m.num_real, m.num_fake] for c, m in metrics.items()}}
  note = ("Each category's fakes against all real videos; AVG-FV = mean over "
          f"{', '.join(fake_video)}. Videos scored by their least consistent track.")
  return protocols.Table(title, columns, table, note=note), numbers


def read_groups(path: str, column: str) -> dict[str, str]:
  """video id -> `column` of a ground-truth CSV (data.protocols.read_ground_truth)."""
  return protocols.read_ground_truth(path, column)


def group_table(track_rows, groups: dict[str, str], column: str,
                title: str) -> tuple[protocols.Table, dict]:
  """AUC of every ground-truth group's fakes against all reals (e.g. per synthetic kind)."""
  rows = [{**r, "category": groups.get(r["video_id"], "?")} for r in track_rows]
  names = sorted({r["category"] for r in rows if int(r["label"]) == constants.FAKE})
  table, numbers = {}, {}
  for row_name, score in SCORE_ROWS.items():
    metrics = protocols.per_category_metrics(video_rows(rows, score), names)
    table[row_name] = {f"{n} AUC": m.auc for n, m in metrics.items()}
    numbers[row_name] = {n: {"auc": m.auc, "ap": m.ap, "real": m.num_real, "fake": m.num_fake}
                         for n, m in metrics.items()}
  note = f"Fakes of each {column} against all real videos."
  return protocols.Table(title, [f"{n} AUC" for n in names], table, note=note), numbers


def compression_table(rows_by_quality: dict[str, list[dict]],
                      categories: Sequence[str]) -> tuple[protocols.Table, dict]:
  """Table 3: AUC / AP of the categories' fakes against the reals, per quality."""
  columns = [f"{q} {m}" for q in rows_by_quality for m in ("AUC", "AP")]
  table = {}
  for row_name, column in SCORE_ROWS.items():
    values = {}
    for quality, rows in rows_by_quality.items():
      videos = [r for r in video_rows(rows, column) if int(r["label"]) == constants.REAL or
                r["category"] in categories]
      try:
        m = protocols.metrics_of_rows(videos)
        values[f"{quality} AUC"], values[f"{quality} AP"] = m.auc, m.ap
      except protocols.EvaluationError as e:
        log.warning("table 3, %s, %s: %s", row_name, quality, e)
    table[row_name] = values
  note = (f"Fakes of {', '.join(categories)} against the real videos, each quality re-encoded "
          "from the same test videos (HQ: H.264 CRF 23, original audio; LQ: CRF 40, 16-kHz "
          "audio).")
  return protocols.Table("Table 3: compression", columns, table, note=note), table


def kodf_table(track_rows, draws: int, seed: int, num_real: int,
               num_fake: int) -> tuple[protocols.Table, dict]:
  """KoDF adversarial subset: mean +- std AUC over `draws` draws of num_real + num_fake."""
  table, numbers = {}, {}
  for row_name, column in SCORE_ROWS.items():
    try:
      mean, std = protocols.bootstrap_auc(video_rows(track_rows, column), num_real, num_fake,
                                          draws, seed)
    except protocols.EvaluationError as e:
      log.warning("KoDF, %s: %s", row_name, e)
      continue
    table[row_name] = {"AUC": f"{100 * mean:.1f} ± {100 * std:.1f}"}
    numbers[row_name] = {"auc_mean": mean, "auc_std": std}
  note = f"{draws} draws of {num_real} real + {num_fake} fake videos, seed {seed}."
  return protocols.Table("KoDF (adversarial subset)", ["AUC"], table, note=note), numbers


def motion_curve(track_rows, bins: int) -> dict:
  """Fig. 4: per score, AUC of the videos in each motion-magnitude quantile bin."""
  videos = video_rows(track_rows, "total")
  motion = np.array([_float(v.get("motion")) for v in videos])
  keep = np.isfinite(motion)
  if keep.sum() < 2 * bins:
    raise protocols.EvaluationError(f"{int(keep.sum())} videos with landmarks are too few for "
                                    f"{bins} motion bins")
  edges = np.quantile(motion[keep], np.linspace(0, 1, bins + 1))
  which = np.clip(np.searchsorted(edges, motion, side="right") - 1, 0, bins - 1)
  curve = {"bin_edges": edges.tolist(), "bin_median": [], "videos": [], "auc": {}}
  by_id = {(v["dataset"], v["video_id"]): b for v, b, k in zip(videos, which, keep) if k}
  for b in range(bins):
    curve["bin_median"].append(float(np.median(motion[keep & (which == b)])))
    curve["videos"].append(int(np.sum(keep & (which == b))))
  for row_name, column in SCORE_ROWS.items():
    aucs = []
    rows = video_rows(track_rows, column)
    for b in range(bins):
      members = [r for r in rows if by_id.get((r["dataset"], r["video_id"])) == b]
      try:
        aucs.append(protocols.metrics_of_rows(members).auc)
      except protocols.EvaluationError:
        aucs.append(float("nan"))
    curve["auc"][row_name] = aucs
  return curve


def _float(value) -> float:
  return float("nan") if value in (None, "") else float(value)


def plot_motion_curve(curve: dict, path: pathlib.Path, title: str) -> pathlib.Path:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.6))
  for name, aucs in curve["auc"].items():
    ax.plot(curve["bin_median"], 100 * np.asarray(aucs), marker="o", label=name)
  ax.set(xlabel="motion magnitude (median of bin, 224-px landmark units / frame)",
         ylabel="AUC (%)", title=title)
  ax.axhline(50, color="k", lw=0.6, ls=":")
  ax.legend(fontsize=8)
  fig.tight_layout()
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


# ----------------------------------------------------------------------------------------------
# Driver


def evaluate(config: ml_collections.ConfigDict, workdir: str,
             checkpoint: Optional[str] = None, sets: Optional[Sequence[str]] = None) -> dict:
  """Scores the sets and writes the tables; returns the summary (also in summary.json)."""
  trained = inference.load_config(workdir)
  if json.dumps(trained.model.to_dict(), sort_keys=True) != json.dumps(
      config.model.to_dict(), sort_keys=True):
    log.warning("--config's model differs from the one %s was trained with; using the "
                "workdir's", workdir)
  config = ml_collections.ConfigDict(config.to_dict())
  config.model = trained.model
  scorer = inference.Scorer.from_workdir(workdir, which=checkpoint or config.eval.checkpoint,
                                         config=config)
  out_dir = pathlib.Path(workdir) / "eval"
  names = list(sets) if sets else list(config.data.test.keys())
  unknown = [n for n in names if n not in config.data.test]
  if unknown:
    from data import cli_errors
    raise cli_errors.UserError(f"unknown test set(s) {unknown}; config.data.test has "
                               f"{sorted(config.data.test.keys())}")
  scores = {name: score_set(scorer, config, name, out_dir) for name in names}
  summary = {"workdir": str(workdir), "checkpoint": checkpoint or config.eval.checkpoint,
             "sets": {n: {"tracks": len(r), "too_short": sum(x["status"] != "ok" for x in r),
                          "no_audio": sum(not x["has_audio"] for x in r)}
                      for n, r in scores.items()}}
  # Reaching here with corrupt shards means input.skip_corrupt_records allowed it (otherwise
  # scoring refused with the file and record): every table then says what it lacks.
  skipped = 0
  if config.input.get("skip_corrupt_records", False):
    for name in names:
      report = scorer.records_skipped(inference.record_set(config, config.data.test[name]))
      summary["sets"][name].update(report)
      skipped += report["records_skipped"]
      if report["corrupt_shards"]:
        log.warning("%s: %d corrupt record(s) skipped: %s", name, report["records_skipped"],
                    "; ".join(report["corrupt_shards"]))
  corrupt = sum(len(summary["sets"][n].get("corrupt_shards", [])) for n in names)
  summary["records_skipped"] = skipped
  writer = jax.process_index() == 0
  c = config.eval

  def publish(name: str, table, numbers) -> None:
    summary[name] = numbers
    if corrupt:
      table.note = (f"{table.note} " if table.note else "") + (
          f"Scored without {skipped} corrupt record(s) in {corrupt} shard(s) (skipped with "
          "input.skip_corrupt_records; see summary.json).")
    if writer:
      table.save(out_dir, name)
      log.info("\n%s", table.markdown())

  for name, rows in scores.items():
    videos = video_rows(rows, "total")
    if writer and videos:
      protocols.write_scores(out_dir / name / "video_scores.csv", videos)
      if len({int(v["label"]) for v in videos}) == 2:
        protocols.plot_roc_and_histograms(videos, out_dir / name / "roc.png",
                                          title=f"{name} (Intra+Cross)", groups="category")
  if c.table2_set in scores:
    table, numbers = category_table(scores[c.table2_set], c.categories,
                                    c.fake_video_categories,
                                    f"Table 2: {c.table2_set}, per category")
    publish("table2", table, numbers)
  if c.get("ground_truth") and c.table2_set in scores:
    column = c.get("ground_truth_column", "kind")
    table, numbers = group_table(scores[c.table2_set], read_groups(c.ground_truth, column),
                                 column, f"{c.table2_set}, AUC per {column}")
    publish(f"table2_by_{column}", table, numbers)
  qualities = {"RAW": c.table2_set, **dict(c.compression_sets)}
  if c.compression_sets and all(s in scores for s in qualities.values()):
    table, numbers = compression_table({q: scores[s] for q, s in qualities.items()},
                                       c.categories)
    publish("table3", table, numbers)
  if c.kodf_set and c.kodf_set in scores:
    table, numbers = kodf_table(scores[c.kodf_set], c.kodf_draws, c.kodf_seed, c.kodf_real,
                                c.kodf_fake)
    publish("kodf", table, numbers)
  if c.motion_set and c.motion_set in scores:
    try:
      curve = motion_curve(scores[c.motion_set], c.motion_bins)
      summary["fig4_motion"] = curve
      if writer:
        plot_motion_curve(curve, out_dir / "fig4_motion.png", f"AUC vs motion ({c.motion_set})")
        rows = [{"bin": b, "median_motion": m, "videos": n,
                 **{k: v[b] for k, v in curve["auc"].items()}}
                for b, (m, n) in enumerate(zip(curve["bin_median"], curve["videos"]))]
        _write_csv(out_dir / "fig4_motion.csv", rows)
    except protocols.EvaluationError as e:
      log.warning("Fig. 4 skipped: %s", e)
  if writer:
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
  return summary


def _write_csv(path: pathlib.Path, rows: list[dict]) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)


def main(argv) -> None:
  from absl import app
  from absl import flags
  from data import logs
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logs.setup()
  workdir_lib.initialize_distributed(flags.FLAGS.tpu)
  sets = [s for s in (flags.FLAGS.sets or "").split(",") if s]
  evaluate(flags.FLAGS.config, flags.FLAGS.workdir, flags.FLAGS.checkpoint, sets or None)


def _define_flags() -> None:
  from absl import flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "run config (a configs/*.py file): data sets "
                                  "and evaluation settings", lock_config=True)
  flags.DEFINE_string("workdir", None, "training workdir (config.json and checkpoints)")
  flags.DEFINE_enum("checkpoint", None, ["latest", "best"], "which checkpoint (default: "
                    "config.eval.checkpoint)")
  flags.DEFINE_string("sets", "", "comma-separated names of config.data.test (default: all)")
  flags.DEFINE_bool("tpu", False, "multi-host JAX (TPU pod slice or multi-node GPU)")
  flags.mark_flags_as_required(["config", "workdir"])


def cli():
  """Console-script entry point (errors and exit codes: data.cli_errors)."""
  from data import records
  workdir_lib.run_absl_cli(main, _define_flags, user_errors={
      records.RecordError: 2, inference.CheckpointNotFoundError: 2,
      inference.CheckpointMismatchError: 2, protocols.EvaluationError: 2})


if __name__ == "__main__":
  cli()
