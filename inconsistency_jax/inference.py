"""Scoring face tracks with a trained detector: workdir checkpoint -> window embeddings -> scores.

Shared by ``evaluate`` (record sets) and ``explain`` (one video). Every track is split into
``input.score_num_windows`` windows (fewer for short tracks, flagged by ``num_windows``);
mu, gamma and alpha embed them, and ``scoring.score_track`` turns the embeddings into
Score_intra (the ``eval.percentile``-th percentile of the identity similarity matrix),
Score_cross (the mean of the video-audio matrix's diagonal) and their sum. A track without
audio is scored by Score_intra alone (``has_audio`` False); a track with fewer than two windows
cannot be scored and is reported with ``status='too_short'``.

Rows of the scores CSV (data.protocols): ``score`` = -consistency (higher = more likely fake,
the project-wide orientation), with ``intra``, ``cross`` and ``total`` kept as computed
(lower = less consistent).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import pathlib
from typing import Iterable, Iterator, Optional

import flax.jax_utils
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from data import constants
from data import protocols
from data import records
from inconsistency_jax import audio_features
from inconsistency_jax import input_pipeline
from inconsistency_jax import scoring
from inconsistency_jax.models import detector

log = logging.getLogger(__name__)

_META_KEYS = ("video_id", "dataset", "split", "category", "method", "identity")


class CheckpointNotFoundError(FileNotFoundError):
  pass


class CheckpointMismatchError(ValueError):
  """A checkpoint that does not fit the config it is used with (names both)."""


def record_set(config: ml_collections.ConfigDict, path: str) -> str:
  """A record set of the config: `path` relative to data.root unless absolute (or a URL)."""
  root = config.data.get("root")
  if root and not pathlib.PurePath(path).is_absolute() and "://" not in path:
    return str(pathlib.Path(root) / path)
  return path


def load_config(workdir: str | pathlib.Path) -> ml_collections.ConfigDict:
  """The config a training workdir was run with (its config.json)."""
  path = pathlib.Path(workdir) / "config.json"
  if not path.is_file():
    raise CheckpointNotFoundError(
        f"{workdir} is not a training workdir of python -m inconsistency_jax.train (no "
        "config.json); pass the --workdir a training run wrote")
  config = ml_collections.ConfigDict(json.loads(path.read_text()))
  if "window_seconds" not in config.get("model", {}):
    raise CheckpointMismatchError(
        f"{workdir} is not an inconsistency detector's workdir ({path} has no "
        "model.window_seconds; a FakeOut run?); use the command of the detector that trained it")
  return config


def check_variables(config: ml_collections.ConfigDict, variables: dict, where: str) -> None:
  """Raises CheckpointMismatchError unless `variables` have the shapes config.model builds."""
  from data import workdir as workdir_lib
  model = detector.build_detector(config.model)
  spec = input_pipeline.WindowSpec.from_model_config(config.model)
  dims = detector.whisper_dims(config.model.audio)
  faces = jax.ShapeDtypeStruct((1, spec.frames_per_window, spec.face_size, spec.face_size, 3),
                               np.uint8)
  mel = jax.ShapeDtypeStruct((1, spec.audio_samples // audio_features.HOP_LENGTH, dims.n_mels),
                             np.float32)
  key = jax.random.PRNGKey(0)
  expected = jax.eval_shape(functools.partial(model.init, train=False),
                            {"params": key, "dropout": key}, faces, mel)
  expected = {k: expected[k] for k in ("params", "batch_stats") if k in expected}
  mismatch = workdir_lib.shape_mismatch(expected, {k: variables.get(k, {}) for k in expected})
  if mismatch:
    raise CheckpointMismatchError(f"the checkpoint {where} does not fit its config's model: "
                                  f"{mismatch}")


def load_variables(workdir: str | pathlib.Path, which: str = "latest",
                   step: Optional[int] = None) -> tuple[dict, int]:
  """({'params', 'batch_stats'}, step) of a training workdir's 'latest' or 'best' checkpoint."""
  directory = pathlib.Path(workdir).absolute() / "checkpoints" / which
  if which not in ("latest", "best") or not directory.is_dir():
    raise CheckpointNotFoundError(
        f"no '{which}' checkpoints in {workdir} (expected {directory}); train first with "
        "python -m inconsistency_jax.train --workdir ...")
  manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(
      read_only=True))
  steps = manager.all_steps()
  if not steps:
    raise CheckpointNotFoundError(f"{directory} holds no finished checkpoint")
  step = max(steps) if step is None else step
  restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  state = restored["state"]
  return {"params": state["params"], "batch_stats": state.get("batch_stats", {})}, int(step)


@dataclasses.dataclass
class ScoredTrack:
  """One scored track: its metadata, window placement and scores (None when too short)."""
  meta: dict
  starts: np.ndarray
  score: Optional[scoring.TrackScore]
  embeddings: Optional[dict] = None

  @property
  def status(self) -> str:
    return "ok" if self.score is not None else "too_short"

  def row(self) -> dict:
    """The scores-CSV row: data.protocols' columns plus the sub-scores and flags."""
    row = {k: self.meta[k] for k in (*_META_KEYS, "track", "label", "num_frames",
                                     "has_audio", "motion")}
    row.update(status=self.status, num_windows=len(self.starts))
    if self.score is None:
      row.update(score=float("nan"), intra="", cross="", total="")
    else:
      s = self.score
      row.update(score=-s.total, intra=s.intra, cross="" if s.cross is None else s.cross,
                 total=s.total)
    return row


class Scorer:
  """Embeds and scores tracks with a detector's variables on all local devices."""

  def __init__(self, config: ml_collections.ConfigDict, variables: dict):
    self.config = config
    self.spec = input_pipeline.WindowSpec.from_model_config(config.model)
    self.num_windows = int(config.input.score_num_windows)
    self.percentile = float(config.eval.percentile)
    model = detector.build_detector(config.model)
    n_mels = detector.whisper_dims(config.model.audio).n_mels
    self._embed = jax.pmap(functools.partial(_embed, model=model, n_mels=n_mels),
                           axis_name="batch")
    self._variables = flax.jax_utils.replicate(variables)
    devices = jax.local_device_count()
    self.batch_size = max(devices, int(config.eval.batch_size) // jax.process_count())
    self.batch_size -= self.batch_size % devices

  @classmethod
  def from_workdir(cls, workdir, which: Optional[str] = None,
                   config: Optional[ml_collections.ConfigDict] = None) -> "Scorer":
    config = config if config is not None else load_config(workdir)
    which = which or config.eval.get("checkpoint", "latest")
    variables, step = load_variables(workdir, which)
    check_variables(config, variables, f"'{which}' step {step} of {workdir}")
    log.info("scoring with %s checkpoint step %d of %s", which, step, workdir)
    return cls(config, variables)

  def dataset(self, source, host_index: int = 0, host_count: int = 1):
    return input_pipeline.score_dataset(
        source, self.spec, num_windows=self.num_windows, batch_size=self.batch_size,
        host_index=host_index, host_count=host_count,
        skip_corrupt=bool(self.config.input.get("skip_corrupt_records", False)))

  def records_skipped(self, source) -> dict:
    """Corrupt records this host's share of shard files loses (after a skipping pass)."""
    files = sorted(records.list_shards(source))[jax.process_index()::jax.process_count()]
    return records.readable_records(files, skip_corrupt=True).report()

  def score_batches(self, batches: Iterable[dict], keep_embeddings: bool = False
                    ) -> Iterator[ScoredTrack]:
    devices = jax.local_device_count()
    for batch in batches:
      device_batch = input_pipeline.shard_for_devices(
          {"faces": batch["faces"], "audio": batch["audio"]}, devices)
      out = jax.device_get(self._embed(self._variables, device_batch))
      out = {k: v.reshape((-1,) + v.shape[2:]) for k, v in out.items()}
      for i in np.flatnonzero(batch["mask"]):
        yield self._score_one(batch, out, int(i), keep_embeddings)

  def _score_one(self, batch, out, i: int, keep_embeddings: bool) -> ScoredTrack:
    keys = (*_META_KEYS, "track", "label", "num_frames", "has_audio", "motion")
    meta = {k: protocols.plain_value(batch[k][i]) for k in keys}
    count = int(batch["num_windows"][i])
    starts = batch["starts"][i][:count]
    if count < scoring.MIN_WINDOWS:
      return ScoredTrack(meta=meta, starts=starts, score=None)
    mu, gamma, alpha = (out[k][i, :count] for k in ("identity", "visual", "audio"))
    has_audio = bool(meta["has_audio"])
    score = scoring.score_track(mu, gamma if has_audio else None,
                                alpha if has_audio else None, percentile=self.percentile)
    embeddings = {"identity": mu, "visual": gamma, "audio": alpha} if keep_embeddings else None
    return ScoredTrack(meta=meta, starts=starts, score=score, embeddings=embeddings)

  def score_source(self, source, keep_embeddings: bool = False) -> list[ScoredTrack]:
    """Scores shard files (this host's share) or a list of serialized records."""
    from tqdm import tqdm
    in_memory = isinstance(source, (list, tuple)) and source and isinstance(source[0], bytes)
    ds = (self.dataset(source) if in_memory else
          self.dataset(source, jax.process_index(), jax.process_count()))
    return list(tqdm(self.score_batches(ds.as_numpy_iterator(), keep_embeddings),
                     desc="score", unit="track", disable=jax.process_index() != 0))


def embed_windows(model, variables, faces, audio, *, n_mels: int, train: bool = False,
                  rng=None):
  """faces [n, T, F, S, S, 3], audio [n, T, A] -> ({identity, visual, audio}: [n, T, d],
  batch-norm updates (empty unless train))."""
  n, t = faces.shape[:2]
  mel = audio_features.log_mel_spectrogram(audio, constants.WHISPER_SAMPLE_RATE, n_mels)
  kwargs = {"train": train}
  if train:
    kwargs.update(mutable=["batch_stats"], rngs={"dropout": rng})
  out = model.apply(variables, faces.reshape((n * t,) + faces.shape[2:]),
                    mel.reshape((n * t,) + mel.shape[2:]), **kwargs)
  out, updates = out if train else (out, {})
  return {k: v.reshape(n, t, -1) for k, v in out.items()}, updates


def _embed(variables, batch, *, model, n_mels: int):
  return embed_windows(model, variables, batch["faces"], batch["audio"], n_mels=n_mels)[0]
