r"""Fine-tunes FakeOut: ``python -m fakeout_jax.finetune --config CONFIG --workdir DIR [--tpu]``.

Data parallel over every local device with `jax.pmap` (axis 'batch'): gradients, metrics and the
batch statistics of the cross-replica batch norm are averaged over all devices of all hosts.
With ``--tpu`` the process joins a multi-host JAX run (TPU pod slice, one process per host) and
reads its own share of the record shards.

The optimiser follows the paper: Adam (0.9, 0.999, 1e-8), learning rate 1e-5 with cosine decay
to 0.95e-5, 6 epochs, softmax cross-entropy over two logits, minority class oversampled.
Checkpoints (orbax) every N steps and at each epoch's end; the best by validation AUC is kept
apart. A run resumes from its last checkpoint exactly: the data position is derived from the
step and every random draw of the input pipeline is a function of (seed, epoch, index).

Example (the demo's tiny CPU configuration)::

  python -m fakeout_jax.finetune --config fakeout_jax/configs/synthetic_tiny.py \
      --config.data.root=demo_out/records --workdir demo_out/fakeout
"""
from __future__ import annotations

import functools
import logging
import pathlib
import sys
import time
from typing import Any, Optional

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import jax_utils
from flax.training import train_state

from data import logs
from data import records
from data import workdir as workdir_lib
from fakeout_jax import checkpoints
from fakeout_jax import input_pipeline
from fakeout_jax import models

log = logging.getLogger(__name__)


class TrainState(train_state.TrainState):
  batch_stats: Any


class ConfigError(ValueError):
  """The config names data or checkpoints that do not exist (raised before any compile)."""


# ----------------------------------------------------------------------------------------------
# Data


def resolve_record_set(config: ml_collections.ConfigDict, record_set) -> list[str]:
  """Shard files of a record set, relative to config.data.root; a clear error when absent."""
  path = pathlib.Path(record_set.path)
  if not path.is_absolute():
    if config.data.root is None:
      raise ConfigError(f"record set {record_set.path!r} is relative but config.data.root is "
                        "not set; pass --config.data.root=DIR (the folder data.prepare wrote)")
    path = pathlib.Path(config.data.root) / path
  try:
    return records.list_shards(str(path))
  except FileNotFoundError:
    raise ConfigError(f"no TFRecord shards at {path}: prepare them with `python -m data.prepare "
                      f"... --out {path}` or fix the config's data paths") from None


def check_config(config: ml_collections.ConfigDict) -> dict[str, list[str]]:
  """Resolves every record set and checkpoint named by the config before anything compiles."""
  files = {"train": resolve_record_set(config, config.data.train)}
  if config.data.get("val"):
    files["val"] = resolve_record_set(config, config.data.val)
  for name, record_set in config.data.get("test", {}).items():
    files[f"test/{name}"] = resolve_record_set(config, record_set)
  if config.init.mode not in ("mmv", "fakeout", "flax", "scratch"):
    raise ConfigError(f"init.mode must be mmv, fakeout, flax or scratch; got {config.init.mode}")
  if config.init.mode != "scratch":
    if not config.init.checkpoint:
      raise ConfigError(f"init.mode={config.init.mode!r} needs init.checkpoint (pass "
                        "--config.init.checkpoint=PATH, or use init.mode=scratch)")
    if not pathlib.Path(config.init.checkpoint).exists():
      raise ConfigError(f"init.checkpoint {config.init.checkpoint} does not exist")
  if config.train.batch_size % jax.device_count():
    raise ConfigError(f"train.batch_size {config.train.batch_size} must be divisible by the "
                      f"{jax.device_count()} devices")
  if config.eval.batch_size % jax.device_count():
    raise ConfigError(f"eval.batch_size {config.eval.batch_size} must be divisible by the "
                      f"{jax.device_count()} devices")
  return files


def input_shapes(config) -> tuple[tuple, Optional[tuple]]:
  c = config.input
  video = (1, c.num_frames, c.image_size, c.image_size, 3)
  audio = (1, input_pipeline.num_spectrogram_frames(c.audio_window), c.num_mel_bins, 1)
  return video, (audio if config.model.modality == "video_audio" else None)


# ----------------------------------------------------------------------------------------------
# State


def learning_rate_schedule(config, total_steps: int) -> optax.Schedule:
  return optax.cosine_decay_schedule(config.train.learning_rate, max(1, total_steps),
                                     alpha=config.train.cosine_alpha)


def trainable_labels(params, linear_probe: bool):
  """'train' for every parameter, or only for the classifier when linear probing."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: "train" if not linear_probe or path[0].key == "classifier" else "frozen",
      params)


def make_optimizer(config, total_steps: int, params) -> optax.GradientTransformation:
  t = config.train
  adam = (optax.adamw(learning_rate_schedule(config, total_steps), t.adam_b1, t.adam_b2,
                      t.adam_eps, weight_decay=t.weight_decay) if t.weight_decay else
          optax.adam(learning_rate_schedule(config, total_steps), t.adam_b1, t.adam_b2,
                     t.adam_eps))
  return optax.multi_transform({"train": adam, "frozen": optax.set_to_zero()},
                               trainable_labels(params, t.linear_probe))


def fresh_variables(config, model, rng) -> dict:
  video, audio = input_shapes(config)
  init = jax.jit(functools.partial(model.init, train=True))
  return flax.core.unfreeze(init(rng, jnp.zeros(video),
                                 None if audio is None else jnp.zeros(audio)))


def initial_variables(config, model, rng) -> dict:
  """Variables to start from: a fresh init, overwritten by the configured checkpoint."""
  variables = fresh_variables(config, model, rng)
  mode = config.init.mode
  if mode == "scratch":
    return variables
  if mode in ("mmv", "fakeout"):
    checkpoint = checkpoints.load_haiku_checkpoint(config.init.checkpoint)
    converted, report = checkpoints.convert(
        checkpoint, variables, head="fresh" if mode == "mmv" else "checkpoint",
        head_variables=variables["params"]["classifier"], strict=not config.init.partial)
    log.info("initialised from %s: %s", config.init.checkpoint, report.summary())
  else:
    converted = checkpoints.restore_variables(config.init.checkpoint)
  return _overlay(variables, converted, partial=config.init.partial)


def _overlay(fresh: dict, loaded: dict, partial: bool) -> dict:
  """`fresh` with every entry `loaded` has; without `partial`, both must have the same tree."""
  flat_fresh = flax.traverse_util.flatten_dict(fresh)
  flat_loaded = flax.traverse_util.flatten_dict(flax.core.unfreeze(loaded))
  missing = sorted("/".join(k) for k in flat_fresh if k not in flat_loaded)
  unexpected = sorted("/".join(k) for k in flat_loaded if k not in flat_fresh)
  wrong = sorted("/".join(k) for k in flat_fresh if k in flat_loaded and
                 np.shape(flat_loaded[k]) != np.shape(flat_fresh[k]))
  if wrong or unexpected or (missing and not partial):
    raise checkpoints.CheckpointMismatchError(
        f"the checkpoint does not fit the model: missing {missing[:5]}{'...' * (len(missing) > 5)}"
        f", unexpected {unexpected[:5]}, mis-shaped {wrong[:5]} (init.partial=True keeps fresh "
        "values for missing entries)")
  merged = {k: np.asarray(flat_loaded.get(k, v)) for k, v in flat_fresh.items()}
  if missing:
    log.warning("%d variables not in the checkpoint stay freshly initialised (e.g. %s)",
                len(missing), missing[:3])
  return flax.traverse_util.unflatten_dict(merged)


def create_train_state(config, model, rng, total_steps: int,
                       variables: Optional[dict] = None) -> TrainState:
  variables = variables if variables is not None else initial_variables(config, model, rng)
  return TrainState.create(apply_fn=model.apply, params=variables["params"],
                           batch_stats=variables["batch_stats"],
                           tx=make_optimizer(config, total_steps, variables["params"]))


def abstract_train_state(config, model) -> TrainState:
  """The shapes of a TrainState (what a workdir checkpoint restores onto), without any init."""
  return jax.eval_shape(lambda: create_train_state(
      config, model, None, 1, fresh_variables(config, model, jax.random.PRNGKey(0))))


# ----------------------------------------------------------------------------------------------
# Steps (run under pmap, axis 'batch')


def _forward(model, variables, batch, train: bool):
  audio = batch.get("audio") if model.modality == "video_audio" else None
  return model.apply(variables, batch["video"], audio, train=train,
                     mutable=["batch_stats"] if train else False)


def train_step(state: TrainState, batch: dict, model, linear_probe: bool):
  """One step: softmax cross-entropy, gradients and batch statistics averaged over devices."""
  def loss_fn(params):
    variables = {"params": params, "batch_stats": state.batch_stats}
    if linear_probe:  # frozen backbone in inference mode: its statistics do not move
      outputs, new_stats = _forward(model, variables, batch, train=False), state.batch_stats
    else:
      outputs, updates = _forward(model, variables, batch, train=True)
      new_stats = updates["batch_stats"]
    logits = outputs["logits"]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
    return loss, (logits, new_stats)

  (loss, (logits, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grads = jax.lax.pmean(grads, axis_name="batch")
  metrics = jax.lax.pmean({"loss": loss,
                           "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"])},
                          axis_name="batch")
  metrics["grad_norm"] = optax.tree.norm(grads)
  return state.apply_gradients(grads=grads, batch_stats=new_stats), metrics


def eval_step(state: TrainState, batch: dict, model):
  """Per-track fake probability: the mean of softmax[:, 1] over the track's N clips."""
  b, n = batch["video"].shape[:2]
  flat = {"video": batch["video"].reshape((b * n,) + batch["video"].shape[2:])}
  if "audio" in batch:
    flat["audio"] = batch["audio"].reshape((b * n,) + batch["audio"].shape[2:])
  outputs = _forward(model, {"params": state.params, "batch_stats": state.batch_stats}, flat,
                     train=False)
  clip_scores = jax.nn.softmax(outputs["logits"].astype(jnp.float32))[:, 1].reshape(b, n)
  out = {"score": clip_scores.mean(axis=1), "clip_scores": clip_scores}
  embeddings = outputs.get("vid_embd"), outputs.get("aud_embd")
  if all(e is not None for e in embeddings):
    vid, aud = embeddings[0]["toaud"], embeddings[1]["tovid"]
    norms = jnp.linalg.norm(vid, axis=-1) * jnp.linalg.norm(aud, axis=-1)
    cosine = jnp.sum(vid * aud, -1) / (norms + 1e-8)
    out["av_cosine"] = cosine.reshape(b, n).mean(axis=1)
  return out


def evaluate_tracks(p_eval_step, state, files, config, record_filter) -> list[dict]:
  """Per-track rows (data.protocols.SCORE_COLUMNS + clip scores) for one record set."""
  local = jax.local_device_count()
  per_host = config.eval.batch_size // jax.process_count()
  ds = input_pipeline.eval_dataset(files, config.input, batch_size=per_host,
                                   host=input_pipeline.HostShard.from_jax(),
                                   record_filter=record_filter)
  rows = []
  for batch in input_pipeline.iterate(ds, local):
    model_batch = {k: batch[k] for k in ("video", "audio") if k in batch}
    out = jax.device_get(p_eval_step(state, model_batch))
    flat = lambda x: np.asarray(x).reshape((-1,) + np.shape(x)[2:])
    mask = flat(batch["mask"]).astype(bool)
    columns = {k: flat(v)[mask] for k, v in batch.items() if k not in ("video", "audio")}
    scores = {k: flat(v)[mask] for k, v in out.items()}
    for i in range(int(mask.sum())):
      row = {"video_id": columns["video_id"][i].decode(), "track": int(columns["track"][i]),
             "dataset": columns["dataset"][i].decode(), "split": "",
             "category": columns["category"][i].decode() or ("real" if columns["label"][i] == 0
                                                             else "fake"),
             "method": columns["method"][i].decode(), "label": int(columns["label"][i]),
             "score": float(scores["score"][i]), "has_audio": int(columns["has_audio"][i]),
             "clip_scores": " ".join(f"{s:.5f}" for s in scores["clip_scores"][i])}
      if "av_cosine" in scores:
        row["av_cosine"] = float(scores["av_cosine"][i])
      rows.append(row)
  return rows


# ----------------------------------------------------------------------------------------------
# The loop


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       force: bool = False) -> TrainState:
  files = check_config(config)
  run = workdir_lib.Workdir(workdir, config, force=force, best_metric="val_auc")
  host = input_pipeline.HostShard.from_jax()
  local = jax.local_device_count()
  per_host = config.train.batch_size // jax.process_count()
  train_filter = input_pipeline.RecordFilter.from_config(config.data.train)
  counts = input_pipeline.count_labels(input_pipeline._host_files(files["train"], host),
                                       train_filter)
  steps_per_epoch = input_pipeline.examples_per_epoch(counts, config.input.oversample) // per_host
  if steps_per_epoch == 0:
    raise ConfigError(f"{sum(counts.values())} training tracks ({counts}) cannot fill one batch "
                      f"of {per_host} on this host")
  total_steps = steps_per_epoch * config.train.num_epochs
  log.info("training tracks per label %s: %d steps per epoch, %d in total", counts,
           steps_per_epoch, total_steps)

  model = models.create_model(config.model, axis_name="batch")
  eval_model = models.create_model(config.model)
  state = create_train_state(config, model, jax.random.PRNGKey(config.train.seed), total_steps)
  if run.latest_step() is not None:
    state, _ = run.restore(jax.device_get(state))
    log.info("resumed from step %d", int(state.step))
  step = int(state.step)
  state = jax_utils.replicate(state)

  p_train_step = jax.pmap(functools.partial(train_step, model=model,
                                            linear_probe=config.train.linear_probe),
                          axis_name="batch", donate_argnums=(0,))
  p_eval_step = jax.pmap(functools.partial(eval_step, model=eval_model), axis_name="batch")

  def save(step, metrics=None):
    run.save(step, jax.device_get(jax_utils.unreplicate(state)), extra={"step": step},
             metrics=metrics)

  progress = logs.progress(total=total_steps, initial=step, desc="finetune", unit="step")
  window_start, window_steps = time.perf_counter(), 0
  while step < total_steps:
    epoch, offset = divmod(step, steps_per_epoch)
    ds = input_pipeline.train_dataset(
        files["train"], config.input, batch_size=per_host, seed=config.train.seed, epoch=epoch,
        start_index=offset * per_host, host=host, record_filter=train_filter,
        label_counts=counts)
    for batch in input_pipeline.iterate(ds, local):
      state, metrics = p_train_step(state, batch)
      step += 1
      window_steps += 1
      loss = float(metrics["loss"][0])
      # A finite loss with non-finite gradients would poison the parameters all the same.
      workdir_lib.check_finite(step, loss + 0.0 * float(metrics["grad_norm"][0]), run)
      progress.update(1)
      if step % config.train.log_every_steps == 0 or step == total_steps:
        elapsed = time.perf_counter() - window_start
        clips_per_s = window_steps * config.train.batch_size / max(elapsed, 1e-9)
        progress.set_postfix(loss=f"{loss:.4f}", clips_per_s=f"{clips_per_s:.1f}")
        run.write_metrics(step, {"loss": loss, "accuracy": float(metrics["accuracy"][0]),
                                 "grad_norm": float(metrics["grad_norm"][0]),
                                 "clips_per_s": clips_per_s,
                                 "learning_rate": float(learning_rate_schedule(
                                     config, total_steps)(step))}, prefix="train/")
        window_start, window_steps = time.perf_counter(), 0
      if step % steps_per_epoch == 0 or step == total_steps:
        break
      if step % config.train.checkpoint_every_steps == 0:
        save(step)
    epoch_done = step // steps_per_epoch
    metrics = None
    if "val" in files and (epoch_done % config.train.eval_every_epochs == 0 or
                           step == total_steps):
      metrics = validate(p_eval_step, state, files["val"], config, step, run)
    save(step, metrics)
  progress.close()
  run.close()
  return jax_utils.unreplicate(state)


def validate(p_eval_step, state, files, config, step, run) -> Optional[dict]:
  from data import protocols
  rows = evaluate_tracks(p_eval_step, state, files, config,
                         input_pipeline.RecordFilter.from_config(config.data.val))
  try:
    result = protocols.metrics_of_rows(protocols.video_scores(rows), config.eval.threshold)
  except protocols.EvaluationError as e:
    log.warning("validation at step %d skipped: %s", step, e)
    return None
  metrics = {"val_auc": result.auc, "val_ap": result.ap, "val_accuracy": result.accuracy}
  run.write_metrics(step, metrics)
  log.info("step %d: validation AUC %.4f AP %.4f accuracy %.4f", step, result.auc, result.ap,
           result.accuracy)
  return metrics


def main(argv) -> None:
  del argv
  from absl import flags
  FLAGS = flags.FLAGS
  logs.setup(FLAGS.verbose)
  workdir_lib.initialize_distributed(FLAGS.tpu)
  try:
    train_and_evaluate(FLAGS.config, FLAGS.workdir, force=FLAGS.force)
  except (ConfigError, workdir_lib.WorkdirError, workdir_lib.NonFiniteLossError,
          checkpoints.CheckpointError, records.RecordError) as e:
    log.error("%s", e)
    sys.exit(1)


def _define_flags():
  from absl import flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "experiment config file (fakeout_jax/configs)",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "directory for checkpoints, metrics and the config")
  flags.DEFINE_bool("tpu", False, "join a multi-host JAX run (TPU pod slice / multi-node GPU)")
  flags.DEFINE_bool("force", False, "train in a workdir holding another config's checkpoints")
  flags.DEFINE_bool("verbose", False, "debug logging")
  flags.mark_flags_as_required(["config", "workdir"])


def cli():
  """Console-script entry point."""
  workdir_lib.run_absl_cli(main, _define_flags)


if __name__ == "__main__":
  cli()
