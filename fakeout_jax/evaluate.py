r"""Evaluates FakeOut on the config's test sets: ``python -m fakeout_jax.evaluate``.

  python -m fakeout_jax.evaluate --config CONFIG --checkpoint CKPT [--out DIR] [--which best]

CKPT is a finetune workdir (its best or latest checkpoint), a folder written by
``python -m fakeout_jax.convert``, or a FakeOut pickle as released by the authors.

For every test set: per-track scores (mean fake probability over N clips) -> per-video scores
(max over tracks) -> ROC-AUC, AP and accuracy (scikit-learn); per-category AUCs where the set has
several fake categories (FakeAVCeleb). Written under OUT (default: CKPT/eval):

  scores_<set>.csv       one row per track (data.protocols.SCORE_COLUMNS, clip scores, cosine)
  metrics.json           every number, plus the paper-table cells this config fills
  results.md / .csv      this run's table (test sets x AUC, AP, ACC)
  roc_<set>.png          ROC curves (per category) and score histograms
  av_cosine.png          Fig. 4: cosine similarity of the video and audio embeddings per category

``python -m fakeout_jax.tables`` assembles the paper's tables from several runs' metrics.json.
"""
from __future__ import annotations

import collections
import functools
import json
import logging
import pathlib
import sys
from typing import Optional

import jax
import ml_collections
from flax import jax_utils

from data import constants
from data import protocols
from data import workdir as workdir_lib
from fakeout_jax import checkpoints
from fakeout_jax import finetune
from fakeout_jax import input_pipeline
from fakeout_jax import models

log = logging.getLogger(__name__)


def load_variables(config: ml_collections.ConfigDict, checkpoint: str,
                   which: str = "best") -> dict:
  """{'params', 'batch_stats'} from a finetune workdir, a converted folder or a pickle."""
  model = models.create_model(config.model)
  path = pathlib.Path(checkpoint)
  if path.is_file():
    template = jax.eval_shape(lambda: finetune.fresh_variables(config, model,
                                                               jax.random.PRNGKey(0)))
    variables, report = checkpoints.convert(checkpoints.load_haiku_checkpoint(path), template,
                                            head="checkpoint")
    log.info("loaded %s: %s", path, report.summary())
    return variables
  if (path / "checkpoints").is_dir():
    run = workdir_lib.Workdir(path, config, force=True, best_metric="val_auc",
                              write_config=False)
    if which == "best" and run.best is not None and run.best.best_step() is None:
      log.warning("%s has no best checkpoint (no validation ran); using the latest", path)
      which = "latest"
    state, _ = run.restore(finetune.abstract_train_state(config, model), which=which)
    run.close()
    return {"params": state.params, "batch_stats": state.batch_stats}
  if checkpoints.has_variables(path):
    return checkpoints.restore_variables(path)
  raise FileNotFoundError(f"{path} is neither a FakeOut pickle, a finetune workdir nor a folder "
                          "written by `python -m fakeout_jax.convert`")


def evaluate(config: ml_collections.ConfigDict, checkpoint: str, out: Optional[str] = None,
             which: str = "best") -> dict:
  """Evaluates every test set of `config`; returns (and writes) the metrics."""
  files = {name: finetune.resolve_record_set(config, record_set)
           for name, record_set in config.data.test.items()}
  if not files:
    raise finetune.ConfigError("config.data.test names no test set")
  out_dir = pathlib.Path(out or pathlib.Path(checkpoint).with_suffix("") / "eval")
  out_dir.mkdir(parents=True, exist_ok=True)
  variables = load_variables(config, checkpoint, which)
  state = jax_utils.replicate(finetune.TrainState(
      step=0, apply_fn=None, params=variables["params"], batch_stats=variables["batch_stats"],
      tx=None, opt_state=None))
  p_eval_step = jax.pmap(functools.partial(finetune.eval_step,
                                           model=models.create_model(config.model)),
                         axis_name="batch")
  results, all_rows = {}, {}
  for name, record_set in config.data.test.items():
    rows = finetune.evaluate_tracks(p_eval_step, state, files[name], config,
                                    input_pipeline.RecordFilter.from_config(record_set))
    if not rows:
      raise protocols.EvaluationError(f"test set {name!r} ({files[name][0]} ...) has no tracks "
                                      "after filtering")
    protocols.write_scores(out_dir / f"scores_{name}.csv", rows)
    videos = protocols.video_scores(rows)
    metrics = protocols.metrics_of_rows(videos, config.eval.threshold).as_dict()
    categories = sorted({v["category"] for v in videos if v["label"] == constants.FAKE})
    if len(categories) > 1:
      metrics["per_category"] = {k: m.as_dict() for k, m in protocols.per_category_metrics(
          videos, categories, config.eval.threshold).items()}
    results[name] = metrics
    all_rows[name] = videos
    protocols.plot_roc_and_histograms(videos, out_dir / f"roc_{name}.png", title=name,
                                      groups="category" if len(categories) > 1 else None)
    log.info("%s: AUC %.4f AP %.4f ACC %.4f (%d real, %d fake videos)", name, metrics["auc"],
             metrics["ap"], metrics["accuracy"], metrics["num_real"], metrics["num_fake"])
  plot_av_cosine(all_rows, out_dir / "av_cosine.png")
  table = results_table(config, results)
  table.save(out_dir, "results")
  cells = paper_cells(config, results)
  (out_dir / "metrics.json").write_text(json.dumps(
      {"checkpoint": str(checkpoint), "config": config.get("name", ""), "results": results,
       "paper_cells": cells}, indent=1, sort_keys=True))
  print(table.markdown())
  return results


def results_table(config, results: dict) -> protocols.Table:
  rows = {}
  for name, m in results.items():
    rows[name] = {"AUC": m["auc"], "AP": m["ap"], "ACC": m["accuracy"]}
    for category, cm in m.get("per_category", {}).items():
      rows[f"{name} / {category}"] = {"AUC": cm["auc"], "AP": cm["ap"], "ACC": cm["accuracy"]}
  return protocols.Table(f"FakeOut ({config.get('name', '')}): video-level metrics, %",
                         ["AUC", "AP", "ACC"], rows)


def paper_cells(config, results: dict) -> list[dict]:
  """The paper-table cells this run fills: config.data.test.<set>.cells = ('t:row:col:metric',)."""
  cells = []
  for name, record_set in config.data.test.items():
    for spec in record_set.get("cells", ()):
      table, row, column, metric = spec.split(":")
      source = results[name]
      if "/" in metric:  # e.g. 'per_category/RVFA/auc'
        *path, metric = metric.split("/")
        for key in path:
          source = source.get(key, {})
      if metric in source:
        cells.append({"table": table, "row": row, "column": column, "value": source[metric]})
  return cells


def plot_av_cosine(rows_by_set: dict, path: pathlib.Path) -> Optional[pathlib.Path]:
  """Fig. 4: distribution of cos(vid_embd, aud_embd) per category (when the model has both)."""
  groups = collections.defaultdict(list)
  for name, rows in rows_by_set.items():
    for row in rows:
      if "av_cosine" in row and row.get("has_audio", 1):
        groups[f"{name}/{row['category']}"].append(float(row["av_cosine"]))
  if not groups:
    return None
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  names = sorted(groups)
  fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(names)), 3.5))
  ax.boxplot([groups[n] for n in names], tick_labels=names, showmeans=True)
  ax.set(ylabel="cosine(video, audio) embedding", title="Audio-visual agreement per category")
  ax.tick_params(axis="x", rotation=30)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def main(argv) -> None:
  del argv
  from absl import flags
  from data import logs
  FLAGS = flags.FLAGS
  logs.setup(FLAGS.verbose)
  try:
    evaluate(FLAGS.config, FLAGS.checkpoint, FLAGS.out, FLAGS.which)
  except (finetune.ConfigError, protocols.EvaluationError, FileNotFoundError,
          checkpoints.CheckpointError, workdir_lib.WorkdirError) as e:
    log.error("%s", e)
    sys.exit(1)


if __name__ == "__main__":
  from absl import app, flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "experiment config file", lock_config=True)
  flags.DEFINE_string("checkpoint", None, "finetune workdir, converted folder or FakeOut pickle")
  flags.DEFINE_string("out", None, "output folder (default: CHECKPOINT/eval)")
  flags.DEFINE_enum("which", "best", ["best", "latest"], "workdir checkpoint to evaluate")
  flags.DEFINE_bool("verbose", False, "debug logging")
  flags.mark_flags_as_required(["config", "checkpoint"])
  app.run(main)
