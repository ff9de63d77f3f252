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
import functools
import json
import logging
import pathlib
import sys
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import jax_utils

from data import constants
from data import protocols
from data import report
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


# ----------------------------------------------------------------------------------------------
# Scoring


class Scorer:
  """A checkpoint's variables on every local device and the compiled evaluation step.

  The step is compiled once per input shape, so the studies (several N, several shifts) reuse
  one Scorer.
  """

  def __init__(self, config: ml_collections.ConfigDict, checkpoint: str, which: str = "best"):
    self.checkpoint = str(checkpoint)
    variables = load_variables(config, checkpoint, which)
    self.model = models.create_model(config.model)
    self.state = jax_utils.replicate(finetune.TrainState(
        step=0, apply_fn=None, params=variables["params"],
        batch_stats=variables["batch_stats"], tx=None, opt_state=None))
    self.p_eval_step = jax.pmap(functools.partial(finetune.eval_step, model=self.model),
                                axis_name="batch")
    self._p_embed_step = None

  def track_rows(self, config, files: Sequence[str], record_set) -> list[dict]:
    return finetune.evaluate_tracks(self.p_eval_step, self.state, files, config,
                                    input_pipeline.RecordFilter.from_config(record_set))

  def clip_embeddings(self, config, files: Sequence[str], record_set,
                      max_tracks: int) -> tuple[np.ndarray, list[dict]]:
    """[tracks, N, D] classifier inputs (concat(vid_repr, aud_repr) or vid_repr) per clip."""
    if self._p_embed_step is None:
      self._p_embed_step = jax.pmap(functools.partial(_embed_step, model=self.model),
                                    axis_name="batch")
    per_host = config.eval.batch_size // jax.process_count()
    ds = input_pipeline.eval_dataset(files, config.input, batch_size=per_host,
                                     host=input_pipeline.HostShard.from_jax(),
                                     record_filter=input_pipeline.RecordFilter.from_config(
                                         record_set))
    embeddings, meta = [], []
    for batch in input_pipeline.iterate(ds, jax.local_device_count()):
      out = np.asarray(jax.device_get(self._p_embed_step(
          self.state, {k: batch[k] for k in ("video", "audio") if k in batch})))
      flat = lambda x: np.asarray(x).reshape((-1,) + np.shape(x)[2:])
      mask = flat(batch["mask"]).astype(bool)
      embeddings.append(flat(out)[mask])
      labels, categories = flat(batch["label"])[mask], flat(batch["category"])[mask]
      meta += [{"label": int(label), "category": category.decode() or
                ("real" if label == constants.REAL else "fake")}
               for label, category in zip(labels, categories)]
      if len(meta) >= max_tracks:
        break
    return np.concatenate(embeddings)[:max_tracks], meta[:max_tracks]


def _embed_step(state, batch, model):
  b, n = batch["video"].shape[:2]
  video = batch["video"].reshape((b * n,) + batch["video"].shape[2:])
  audio = None
  if "audio" in batch:
    audio = batch["audio"].reshape((b * n,) + batch["audio"].shape[2:])
  outputs = model.apply({"params": state.params, "batch_stats": state.batch_stats}, video,
                        audio if model.modality == "video_audio" else None, train=False)
  features = outputs["vid_repr"]
  if "aud_repr" in outputs:
    features = jnp.concatenate([features, outputs["aud_repr"]], axis=-1)
  return features.reshape(b, n, -1)


def test_files(config) -> dict[str, list[str]]:
  """Shard files of every test set (a clear error before anything compiles)."""
  files = {name: finetune.resolve_record_set(config, record_set)
           for name, record_set in config.data.test.items()}
  if not files:
    raise finetune.ConfigError("config.data.test names no test set")
  return files


def drop_categories(rows: list[dict], record_set, name: str) -> list[dict]:
  """Leaves out the tracks of ``record_set.drop_categories``; an error if none matched."""
  drop = tuple(record_set.get("drop_categories", ()))
  if not drop:
    return rows
  kept = [r for r in rows if r["category"] not in drop]
  if len(kept) == len(rows):
    raise protocols.EvaluationError(
        f"test set {name!r}: drop_categories {list(drop)} matched no video of "
        f"{record_set.path}; was it prepared with the option that marks them (DFDC's dog "
        "masks: python -m data.prepare ... --option dog_mask_list=FILE)?")
  log.info("%s: left out %d tracks of categories %s", name, len(rows) - len(kept), list(drop))
  return kept


def score_summary(videos: Sequence[dict], threshold: float) -> dict:
  """Mean score and fraction called fake per class, overall and among videos with audio."""
  groups = {"real": lambda v: v["label"] == constants.REAL,
            "fake": lambda v: v["label"] == constants.FAKE}
  out = {}
  for name, member in groups.items():
    for suffix, extra in (("", lambda v: True),
                          ("_with_audio", lambda v: int(v.get("has_audio", 0)) == 1)):
      scores = np.array([v["score"] for v in videos if member(v) and extra(v)], np.float64)
      if scores.size:
        out[name + suffix] = {"count": int(scores.size), "mean": float(scores.mean()),
                              "fraction_fake": float(np.mean(scores >= threshold))}
  return out


def set_metrics(videos: Sequence[dict], threshold: float, need_both_classes: bool = True
                ) -> dict:
  """Metrics of one test set's video rows (AUC, AP, ACC, per category, score summary)."""
  metrics = {}
  try:
    metrics.update(protocols.metrics_of_rows(videos, threshold).as_dict())
  except protocols.EvaluationError:
    if need_both_classes or not videos:
      raise
  categories = sorted({v["category"] for v in videos if v["label"] == constants.FAKE})
  if len(categories) > 1 and "auc" in metrics:
    metrics["per_category"] = {k: m.as_dict() for k, m in protocols.per_category_metrics(
        videos, categories, threshold).items()}
  metrics["scores"] = score_summary(videos, threshold)
  return metrics


def evaluate_sets(scorer: Scorer, config, files: dict, out_dir: Optional[pathlib.Path],
                  need_both_classes: bool = True) -> tuple[dict, dict, dict]:
  """(metrics, video rows, failures) per test set; scores CSVs under `out_dir` if given."""
  results, videos_by_set, failed = {}, {}, {}
  for name, record_set in config.data.test.items():
    try:
      rows = scorer.track_rows(config, files[name], record_set)
      if not rows:
        raise protocols.EvaluationError(f"test set {name!r} ({files[name][0]} ...) has no "
                                        "tracks after filtering")
      rows = drop_categories(rows, record_set, name)
      if out_dir is not None:
        protocols.write_scores(out_dir / f"scores_{name}.csv", rows)
      videos = protocols.video_scores(rows)
      results[name] = set_metrics(videos, config.eval.threshold, need_both_classes)
    except protocols.EvaluationError as e:
      log.error("%s", e)
      failed[name] = str(e)
      continue
    videos_by_set[name] = videos
    m = results[name]
    if "auc" in m:
      log.info("%s: AUC %.4f AP %.4f ACC %.4f (%d real, %d fake videos)", name, m["auc"],
               m["ap"], m["accuracy"], m["num_real"], m["num_fake"])
  return results, videos_by_set, failed


# ----------------------------------------------------------------------------------------------
# The plain evaluation


def evaluate(config: ml_collections.ConfigDict, checkpoint: str, out: Optional[str] = None,
             which: str = "best", scorer: Optional[Scorer] = None) -> dict:
  """Evaluates every test set of `config`; returns (and writes) the metrics.

  Raises protocols.EvaluationError after writing everything else when a test set failed.
  """
  files = test_files(config)
  out_dir = output_dir(checkpoint, out)
  scorer = scorer or Scorer(config, checkpoint, which)
  results, videos_by_set, failed = evaluate_sets(scorer, config, files, out_dir)
  for name, videos in videos_by_set.items():
    grouped = "per_category" in results[name]
    protocols.plot_roc_and_histograms(videos, out_dir / f"roc_{name}.png", title=name,
                                      groups="category" if grouped else None)
  plot_av_cosine(videos_by_set, out_dir / "av_cosine.png")
  table = results_table(config, results)
  table.save(out_dir, "results")
  cells = paper_cells(config, results)
  write_json(out_dir / "metrics.json", {
      "checkpoint": str(checkpoint), "config": config.get("name", ""), "results": results,
      "failed": failed, "paper_cells": cells})
  print(table.markdown())
  raise_failures(failed)
  return results


def output_dir(checkpoint: str, out: Optional[str]) -> pathlib.Path:
  out_dir = pathlib.Path(out or pathlib.Path(checkpoint).with_suffix("") / "eval")
  out_dir.mkdir(parents=True, exist_ok=True)
  return out_dir


def write_json(path: pathlib.Path, content: dict) -> None:
  path.write_text(json.dumps(content, indent=1, sort_keys=True))


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


def paper_cells(config, results: dict) -> list[dict]:
  """The paper-table cells this run fills: config.data.test.<set>.cells = ('t:row:col:metric',).

  A spec may name the evaluation's settings, filled in before it is read: '{num_clips}'
  (input.eval_num_clips, Fig. 14) and '{audio_shift}' (input.eval_audio_shift_seconds, Fig. 13;
  format specs allowed, e.g. '{audio_shift:+.2f}'). A metric path such as
  'per_category/RVFA/auc' or 'scores/real_with_audio/mean' reads nested results.
  """
  settings = {"num_clips": config.input.eval_num_clips,
              "audio_shift": float(config.input.get("eval_audio_shift_seconds", 0.0))}
  cells = []
  for name, record_set in config.data.test.items():
    if name not in results:
      continue
    for spec in record_set.get("cells", ()):
      parts = spec.format(**settings).split(":")
      if len(parts) != 4:
        raise ValueError(f"cell {spec!r} of test set {name!r}: expected 'table:row:column:metric'")
      table, row, column, metric = parts
      source = results[name]
      for key in metric.split("/"):
        source = source.get(key) if isinstance(source, dict) else None
      if isinstance(source, (int, float)):
        cells.append({"table": table, "row": row, "column": column, "value": float(source)})
      else:
        log.warning("cell %s: test set %r has no %r; left empty", spec, name, metric)
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
  files = test_files(config)
  out_dir = output_dir(checkpoint, out)
  from fakeout_jax import studies  # pylint: disable=import-outside-toplevel (imports this)
  if audio_shifts:
    studies.check_audio_model(config)
  scorer = Scorer(config, checkpoint, which)
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
  try:
    run(FLAGS.config, FLAGS.checkpoint, FLAGS.out, FLAGS.which, num_clips=num_clips,
        audio_shifts=audio_shifts, with_umap=FLAGS.umap)
  except (finetune.ConfigError, protocols.EvaluationError, FileNotFoundError,
          checkpoints.CheckpointError, workdir_lib.WorkdirError) as e:
    log.error("%s", e)
    sys.exit(1)


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
  """Console-script entry point."""
  workdir_lib.run_absl_cli(main, _define_flags)


if __name__ == "__main__":
  cli()
