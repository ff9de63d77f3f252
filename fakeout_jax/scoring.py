"""Scoring FakeOut on test sets: a loaded checkpoint's evaluation step, per-set metrics, cells.

Shared by ``python -m fakeout_jax.evaluate`` and its studies (fakeout_jax.studies), which both
score test sets with one `Scorer`; neither command module is imported by the other's helpers.
"""
from __future__ import annotations

import functools
import json
import logging
import pathlib
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import jax_utils

from data import constants
from data import protocols
from fakeout_jax import input_pipeline
from fakeout_jax import models
from fakeout_jax import state

log = logging.getLogger(__name__)


class Scorer:
  """A checkpoint's variables on every local device and the compiled evaluation step.

  The step is compiled once per input shape, so the studies (several N, several shifts) reuse
  one Scorer.
  """

  def __init__(self, config: ml_collections.ConfigDict, checkpoint: str, which: str = "best"):
    self.checkpoint = str(checkpoint)
    variables = state.load_variables(config, checkpoint, which)
    self.model = models.create_model(config.model)
    self.state = jax_utils.replicate(state.TrainState(
        step=0, apply_fn=None, params=variables["params"],
        batch_stats=variables["batch_stats"], tx=None, opt_state=None))
    self.p_eval_step = jax.pmap(functools.partial(state.eval_step, model=self.model),
                                axis_name="batch")
    self._p_embed_step = None

  def track_rows(self, config, files: Sequence[str], record_set) -> list[dict]:
    return state.evaluate_tracks(self.p_eval_step, self.state, files, config,
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


def _embed_step(model_state, batch, model):
  b, n = batch["video"].shape[:2]
  video = batch["video"].reshape((b * n,) + batch["video"].shape[2:])
  audio = None
  if "audio" in batch:
    audio = batch["audio"].reshape((b * n,) + batch["audio"].shape[2:])
  outputs = model.apply({"params": model_state.params, "batch_stats": model_state.batch_stats},
                        video,
                        audio if model.modality == "video_audio" else None, train=False)
  features = outputs["vid_repr"]
  if "aud_repr" in outputs:
    features = jnp.concatenate([features, outputs["aud_repr"]], axis=-1)
  return features.reshape(b, n, -1)


def test_files(config) -> dict[str, list[str]]:
  """Shard files of every test set (a clear error before anything compiles)."""
  files = {name: state.resolve_record_set(config, record_set)
           for name, record_set in config.data.test.items()}
  if not files:
    raise state.ConfigError("config.data.test names no test set")
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


def write_json(path: pathlib.Path, content: dict) -> None:
  path.write_text(json.dumps(content, indent=1, sort_keys=True))
