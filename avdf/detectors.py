"""Both detectors behind one small interface: score in-memory face tracks, or record sets.

The face tracks come from ONE run of data.facetrack; each detector turns them into its own
inputs exactly as its own commands do (FakeOut: fakeout_jax.predict.track_examples, the
evaluation sampler over the record format; inconsistency: the record format and the scoring
windows of inconsistency_jax.inference, explained per window by inconsistency_jax.explain), so a
face scored here has the same scores as the same face in a record set scored by calibrate /
evaluate. Results are plain dicts keyed by track index.
"""
from __future__ import annotations

import logging
import pathlib
from typing import Optional, Sequence

import numpy as np

from data import protocols

log = logging.getLogger(__name__)

# (dataset, video_id, track): one face of one video in a record set.
FaceKey = tuple


class FakeOutDetector:
  """FakeOut: per-clip fake probabilities; a face's score is their mean (the paper's)."""

  name = "fakeout"

  def __init__(self, checkpoint: str, config_path: Optional[str] = None,
               num_clips: Optional[int] = None):
    import jax
    from fakeout_jax import models
    from fakeout_jax import predict
    from fakeout_jax import state
    self.checkpoint = str(checkpoint)
    self.config = predict.load_config(self.checkpoint, config_path)
    if num_clips:
      self.config.input.eval_num_clips = int(num_clips)
    self.variables = state.load_variables(self.config, self.checkpoint, which="best")
    model = models.create_model(self.config.model)
    self._apply = jax.jit(
        lambda v, video, audio: model.apply(v, video, audio, train=False)["logits"])
    self.use_audio = self.config.model.modality == "video_audio"

  def settings(self) -> dict:
    return {"checkpoint": self.checkpoint, "model": self.config.get("name", ""),
            "modality": self.config.model.modality,
            "clips_per_face": int(self.config.input.eval_num_clips),
            "frames_per_clip": int(self.config.input.num_frames)}

  def score_tracks(self, tracks: Sequence, serialized: Sequence[bytes]) -> dict[int, dict]:
    """track index -> {score, clips: [{start, end, score}], thumbnails: [RGB uint8], silent}.

    `serialized`: the tracks' records as data.prepare writes them (serialize_tracks), read by
    the evaluation sampler exactly as a record set is (audio codec tail, multi-face audio rule).
    """
    import jax
    import tensorflow as tf
    from data import records
    from fakeout_jax import input_pipeline
    c = self.config.input
    by_index = {int(t.track_index): t for t in tracks}
    out = {}
    for record in serialized:
      parsed = records.parse_track(tf.constant(record))
      example = input_pipeline.eval_example(parsed, c)
      track = by_index[int(parsed["track/index"].numpy())]
      audio = np.asarray(example["audio"]) if self.use_audio else None
      logits = np.asarray(self._apply(self.variables, np.asarray(example["video"]), audio))
      clip_scores = np.asarray(jax.nn.softmax(logits)[:, 1], np.float64)
      length, span = track.num_frames, c.num_frames * c.frame_stride
      starts = input_pipeline.linspace_starts(length, span, c.eval_num_clips).numpy()
      ends = [min(length - 1, s + span - 1) for s in starts]
      silent = bool(self.use_audio and (not track.has_audio or (
          c.get("multi_face_audio", "released") == "released"
          and bool(input_pipeline.released_silent_track(parsed).numpy()))))
      out[int(track.track_index)] = {
          "score": float(clip_scores.mean()), "silent_input": silent,
          "clips": [{"start": round(float(track.timestamps[s]), 3),
                     "end": round(float(track.timestamps[e]) + 1.0 / track.fps, 3),
                     "score": float(p)} for s, e, p in zip(starts, ends, clip_scores)],
          "thumbnails": [track.frames_224[min(length - 1, s + span // 2)] for s in starts]}
    return out

  def score_records(self, files: Sequence[str]) -> dict[FaceKey, dict]:
    """Every track of the shard files: key -> the scores-CSV row (score = track probability)."""
    import ml_collections
    from fakeout_jax import scoring
    scorer = scoring.Scorer(self.config, self.checkpoint, which="best")
    rows = scorer.track_rows(self.config, list(files), ml_collections.ConfigDict({}))
    return {(r["dataset"], r["video_id"], int(r["track"])): r for r in rows}


class InconsistencyDetector:
  """Tian et al.: window embeddings -> identity (intra) and audio-video (cross) consistency."""

  name = "inconsistency"

  def __init__(self, workdir: str, which: Optional[str] = None, top_k: int = 3):
    from inconsistency_jax import inference
    self.workdir = str(workdir)
    config = inference.load_config(workdir)
    self.which = which or config.eval.get("checkpoint", "latest")
    variables, self.step = inference.load_variables(workdir, self.which)
    self.scorer = inference.Scorer(config, variables)
    self.top_k = int(top_k)

  def settings(self) -> dict:
    c = self.scorer.config
    return {"checkpoint": f"{self.workdir} ({self.which}, step {self.step})",
            "windows": self.scorer.num_windows, "window_seconds": c.model.window_seconds,
            "percentile": self.scorer.percentile, "flagged_windows": self.top_k}

  def _scored(self, serialized: Sequence[bytes]) -> list:
    ds = self.scorer.dataset(list(serialized))
    return list(self.scorer.score_batches(ds.as_numpy_iterator()))

  def score_tracks(self, tracks: Sequence, serialized: Sequence[bytes]) -> dict[int, dict]:
    """track index -> inconsistency_jax.explain.window_report (status, score, windows, flagged
    windows, matrices) plus `window_faces`: the flagged windows' sampled faces."""
    from inconsistency_jax import explain
    by_index = {int(t.track_index): t for t in tracks}
    out = {}
    for item in self._scored(serialized):
      index = int(item.meta["track"])
      track = by_index[index]
      report = explain.window_report(item, np.asarray(track.timestamps),
                                     self.scorer.spec.window_frames, self.scorer.num_windows,
                                     self.top_k)
      frames = track.frames_224 if track.frames_224 is not None else track.frames_112
      offsets = self.scorer.spec.frame_offsets()
      report["window_faces"] = {
          i: frames[np.clip(int(item.starts[i]) + offsets, 0, len(frames) - 1)]
          for i in report.get("flagged_windows", [])}
      out[index] = report
    return out

  def score_records(self, files: Sequence[str]) -> dict[FaceKey, dict]:
    """Every track of the shard files: key -> inconsistency_jax.inference.ScoredTrack.row()."""
    rows = {}
    for item in self._scored_files(files):
      row = item.row()
      rows[(row["dataset"], row["video_id"], int(row["track"]))] = row
    return rows

  def _scored_files(self, files):
    ds = self.scorer.dataset(list(files))
    return self.scorer.score_batches(ds.as_numpy_iterator())


def serialize_tracks(video_path: str, video_id: str, tracks: Sequence) -> list[bytes]:
  """One video's tracks as the records data.prepare writes (both detectors read these)."""
  from data import constants
  from data import prepare
  from data.datasets import base
  record = base.VideoRecord(video_path=str(video_path), label=constants.REAL, video_id=video_id,
                            dataset="detect", split="", category="unknown",
                            has_audio=any(t.has_audio for t in tracks))
  return prepare.track_records(record, list(tracks))


def _optional(value) -> Optional[float]:
  if value is None or value == "":
    return None
  value = float(value)
  return value if np.isfinite(value) else None


def score_record_sets(files: Sequence[str], fakeout: Optional[FakeOutDetector],
                      inconsistency: Optional[InconsistencyDetector]) -> list[dict]:
  """One row per face track of the record set with both detectors' raw scores (outer join:
  a face one detector could not score keeps the other's) and the label and metadata."""
  from data import records
  files = records.list_shards(list(files))
  by_detector = {}
  if fakeout is not None:
    log.info("FakeOut: scoring %d shard files", len(files))
    by_detector["fakeout"] = fakeout.score_records(files)
  if inconsistency is not None:
    log.info("inconsistency: scoring %d shard files", len(files))
    by_detector["inconsistency"] = inconsistency.score_records(files)
  keys = sorted(set().union(*(set(rows) for rows in by_detector.values())))
  out = []
  for key in keys:
    f_row = by_detector.get("fakeout", {}).get(key)
    i_row = by_detector.get("inconsistency", {}).get(key)
    meta = f_row or i_row
    labels = {int(r["label"]) for r in (f_row, i_row) if r is not None}
    if len(labels) != 1:
      raise protocols.EvaluationError(f"{key}: the detectors read different labels {labels}")
    out.append({
        "dataset": key[0], "video_id": key[1], "track": key[2], "label": next(iter(labels)),
        "category": meta.get("category") or ("real" if labels == {0} else "fake"),
        "method": meta.get("method", ""),
        "has_audio": int(bool(meta.get("has_audio", 0))),
        "fakeout": _optional(f_row["score"]) if f_row else None,
        "intra": _optional(i_row["intra"]) if i_row else None,
        "cross": _optional(i_row["cross"]) if i_row else None,
        "inconsistency_status": i_row["status"] if i_row else "not run"})
  return out


def describe_files(files: Sequence[str]) -> str:
  parents = sorted({str(pathlib.Path(f).parent) for f in files})
  return f"{len(files)} shard files in {', '.join(parents)}"
