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
import time
from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import jax_utils

from data import logs
from data import records
from data import workdir as workdir_lib
from fakeout_jax import augment
from fakeout_jax import checkpoints
from fakeout_jax import input_pipeline
from fakeout_jax import models
from fakeout_jax import state as state_lib

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# Data


def check_config(config: ml_collections.ConfigDict) -> dict[str, list[str]]:
  """Resolves every record set and checkpoint named by the config before anything compiles."""
  files = {"train": state_lib.resolve_record_set(config, config.data.train)}
  if config.data.get("val"):
    files["val"] = state_lib.resolve_record_set(config, config.data.val)
  for name, record_set in config.data.get("test", {}).items():
    files[f"test/{name}"] = state_lib.resolve_record_set(config, record_set)
  state_lib.check_init(config)
  state_lib.check_loop_counts(config.train)
  if config.train.batch_size % jax.device_count():
    raise state_lib.ConfigError(f"train.batch_size {config.train.batch_size} must be divisible "
                                f"by the {jax.device_count()} devices")
  if config.eval.batch_size % jax.device_count():
    raise state_lib.ConfigError(f"eval.batch_size {config.eval.batch_size} must be divisible "
                                f"by the {jax.device_count()} devices")
  return files


# ----------------------------------------------------------------------------------------------
# Steps (run under pmap, axis 'batch')


def train_step(state: state_lib.TrainState, batch: dict, model, linear_probe: bool,
               augment_params: Optional[augment.AugmentParams] = None):
  """One step: softmax cross-entropy, gradients and batch statistics averaged over devices.

  uint8 clips are scaled and, when the batch carries ``augment_seed``, augmented here on the
  device (fakeout_jax.augment)."""
  batch = {**batch, "video": augment.train_video(batch, augment_params)}

  def loss_fn(params):
    variables = {"params": params, "batch_stats": state.batch_stats}
    if linear_probe:  # frozen backbone in inference mode: its statistics do not move
      outputs = state_lib.forward(model, variables, batch, train=False)
      new_stats = state.batch_stats
    else:
      outputs, updates = state_lib.forward(model, variables, batch, train=True)
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


# ----------------------------------------------------------------------------------------------
# The loop


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       force: bool = False) -> state_lib.TrainState:
  files = check_config(config)
  run = workdir_lib.Workdir(workdir, config, force=force, best_metric="val_auc")
  host = input_pipeline.HostShard.from_jax()
  local = jax.local_device_count()
  per_host = config.train.batch_size // jax.process_count()
  train_filter = input_pipeline.RecordFilter.from_config(config.data.train)
  skip_corrupt = bool(config.input.get("skip_corrupt_records", False))
  host_files = input_pipeline._host_files(files["train"], host)
  counts = input_pipeline.count_labels(host_files, train_filter, skip_corrupt=skip_corrupt)
  if skip_corrupt:  # counted once here; training and validation read the same records
    skipped = records.readable_records(host_files, skip_corrupt=True).records_skipped
    run.write_metrics(0, {"records_skipped_training": skipped}, prefix="input/")
  steps_per_epoch = input_pipeline.examples_per_epoch(counts, config.input.oversample) // per_host
  if steps_per_epoch == 0:
    raise state_lib.ConfigError(f"{sum(counts.values())} training tracks ({counts}) cannot fill "
                                f"one batch of {per_host} on this host")
  total_steps = steps_per_epoch * config.train.num_epochs
  log.info("training tracks per label %s: %d steps per epoch, %d in total", counts,
           steps_per_epoch, total_steps)

  model = models.create_model(config.model, axis_name="batch")
  eval_model = models.create_model(config.model)
  state = state_lib.create_train_state(config, model, jax.random.PRNGKey(config.train.seed),
                                       total_steps)
  if run.latest_step() is not None:
    state, _ = run.restore(jax.device_get(state))
    log.info("resumed from step %d", int(state.step))
  step = int(state.step)
  state = jax_utils.replicate(state)

  p_train_step = jax.pmap(functools.partial(
      train_step, model=model, linear_probe=config.train.linear_probe,
      augment_params=augment.AugmentParams.from_config(config.input)),
      axis_name="batch", donate_argnums=(0,))
  p_eval_step = jax.pmap(functools.partial(state_lib.eval_step, model=eval_model),
                         axis_name="batch")

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
    # Double buffering: the next batch is copied to the devices while this step runs.
    for batch in jax_utils.prefetch_to_device(input_pipeline.iterate(ds, local), 2):
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
                                 "learning_rate": float(state_lib.learning_rate_schedule(
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
  rows = state_lib.evaluate_tracks(p_eval_step, state, files, config,
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
  train_and_evaluate(FLAGS.config, FLAGS.workdir, force=FLAGS.force)


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
  """Console-script entry point (errors and exit codes: data.cli_errors)."""
  workdir_lib.run_absl_cli(main, _define_flags, user_errors={
      state_lib.ConfigError: 2, checkpoints.CheckpointError: 2, records.RecordError: 2})


if __name__ == "__main__":
  cli()
