r"""Trains the inconsistency detector on real videos (Tian et al., Eqs. 2 and 3).

  python -m inconsistency_jax.train --config inconsistency_jax/configs/default.py \
      --config.data.root=/data/records --workdir runs/inconsistency [--tpu] [--force]

Every step takes N distinct identities x T windows (input_pipeline.TrainSampler), embeds each
window with mu (identity), gamma (visual) and alpha (audio), and minimises

  loss = intra_weight * L_intra(mu; tau) + cross_weight * L_cross(gamma, alpha; tau')

Data parallel with ``jax.pmap(axis_name='batch')``: each device holds N / devices identities;
Eq. 2 all-gathers the identity embeddings so that the negatives of every window are the windows
of ALL N identities of the global batch, on every device and host (losses.intra_modal_loss);
Eq. 3 contrasts windows of one video and needs no communication. Gradients are averaged with
``lax.pmean``; batch norm statistics are computed over the global batch.

The workdir holds config.json, orbax checkpoints (checkpoints/latest every
``train.checkpoint_every_steps`` and at the end; checkpoints/best by the validation loss),
metrics.jsonl and TensorBoard events (data.workdir). Re-running the command resumes from the
latest checkpoint: batches are a pure function of (seed, step), so the resumed run computes the
same parameters, bit for bit, as one that was never interrupted. A NaN or infinite loss stops
the run before anything is saved, naming the last good checkpoint. ``--tpu`` initialises
multi-host JAX (one process per host; each reads its own share of the shards).
"""
from __future__ import annotations

import functools
import logging
import time
from typing import Any, Optional

import flax.jax_utils
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from data import records
from data import workdir as workdir_lib
from inconsistency_jax import audio_features
from inconsistency_jax import checkpoints
from inconsistency_jax import inference
from inconsistency_jax import input_pipeline
from inconsistency_jax import losses
from inconsistency_jax.models import detector

log = logging.getLogger(__name__)


class TrainState(train_state.TrainState):
  batch_stats: Any


# ----------------------------------------------------------------------------------------------
# Model, optimiser, state


def create_model(config: ml_collections.ConfigDict) -> detector.InconsistencyDetector:
  return detector.build_detector(config.model)


def example_inputs(config: ml_collections.ConfigDict, spec: input_pipeline.WindowSpec):
  """One window of zeros: faces [1, F, S, S, 3] uint8, mel [1, frames, n_mels]."""
  faces = jnp.zeros((1, spec.frames_per_window, spec.face_size, spec.face_size, 3), jnp.uint8)
  dims = detector.whisper_dims(config.model.audio)
  mel = jnp.zeros((1, spec.audio_samples // audio_features.HOP_LENGTH, dims.n_mels))
  return faces, mel


def initial_variables(config, model, spec, rng) -> dict:
  """Random variables, with converted AdaFace / Whisper weights copied in when configured."""
  faces, mel = example_inputs(config, spec)
  variables = jax.jit(functools.partial(model.init, train=False))(
      {"params": rng, "dropout": rng}, faces, mel)
  variables = jax.device_get(variables)
  pretrained = {}
  if config.init.get("adaface"):
    pretrained["adaface"] = checkpoints.restore(config.init.adaface)[0]
  if config.init.get("whisper"):
    pretrained["whisper_variables"] = checkpoints.restore(config.init.whisper)[0]
  if pretrained:
    variables = jax.device_get(checkpoints.insert_pretrained(variables, **pretrained))
    log.info("initialised from %s", ", ".join(
        f"{k}={config.init.get(k)}" for k in ("adaface", "whisper") if config.init.get(k)))
  return variables


def create_optimizer(config: ml_collections.ConfigDict, params) -> optax.GradientTransformation:
  """AdamW with warm-up + cosine decay, kernels decayed, Whisper's position table frozen."""
  c = config.train
  schedule = optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=c.learning_rate, warmup_steps=c.warmup_steps,
      decay_steps=max(c.num_steps, c.warmup_steps + 1), end_value=0.0)
  decay_mask = jax.tree_util.tree_map(lambda p: np.ndim(p) > 1, params)
  adamw = optax.chain(optax.clip_by_global_norm(c.grad_clip_norm),
                      optax.adamw(schedule, weight_decay=c.weight_decay, mask=decay_mask))
  labels = jax.tree_util.tree_map(lambda trainable: "trainable" if trainable else "frozen",
                                  detector.trainable_mask(params))
  return optax.multi_transform({"trainable": adamw, "frozen": optax.set_to_zero()}, labels)


def create_train_state(config, model, spec, rng) -> TrainState:
  variables = initial_variables(config, model, spec, rng)
  return TrainState.create(apply_fn=model.apply, params=variables["params"],
                           batch_stats=variables.get("batch_stats", {}),
                           tx=create_optimizer(config, variables["params"]))


# ----------------------------------------------------------------------------------------------
# Steps (run under jax.pmap(axis_name='batch'))


def compute_losses(embeddings, loss_config, axis_name: Optional[str] = "batch"):
  intra = losses.intra_modal_loss(embeddings["identity"], loss_config.tau, axis_name=axis_name,
                                  exclude_same_window=loss_config.exclude_same_window)
  cross = losses.cross_modal_loss(embeddings["visual"], embeddings["audio"],
                                  loss_config.tau_prime)
  total = loss_config.intra_weight * intra + loss_config.cross_weight * cross
  return total, {"intra_loss": intra, "cross_loss": cross}


def train_step(state: TrainState, batch, *, model, config, n_mels: int):
  rng = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(config.train.seed), state.step),
                           jax.lax.axis_index("batch"))

  def loss_fn(params):
    embeddings, updates = inference.embed_windows(
        model, {"params": params, "batch_stats": state.batch_stats}, batch["faces"],
        batch["audio"], n_mels=n_mels, train=True, rng=rng)
    loss, parts = compute_losses(embeddings, config.loss)
    return loss, (updates, parts)

  (loss, (updates, parts)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grads = jax.lax.pmean(grads, "batch")
  state = state.apply_gradients(grads=grads, batch_stats=updates["batch_stats"])
  metrics = {"loss": loss, **parts, "grad_norm": optax.tree.norm(grads)}
  return state, jax.lax.pmean(metrics, "batch")


def eval_step(state: TrainState, batch, *, model, config, n_mels: int):
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  embeddings, _ = inference.embed_windows(model, variables, batch["faces"], batch["audio"],
                                          n_mels=n_mels, train=False)
  loss, parts = compute_losses(embeddings, config.loss)
  return jax.lax.pmean({"loss": loss, **parts}, "batch")


# ----------------------------------------------------------------------------------------------
# Data


def make_sampler(config, spec, record_path: str, *, seed: int, cache_dir: Optional[str],
                 what: str) -> input_pipeline.TrainSampler:
  """This host's sampler over its share of a record set (identities owned by one host only)."""
  files = records.list_shards(inference.record_set(config, record_path))
  hosts, host = jax.process_count(), jax.process_index()
  if len(files) < hosts:
    raise input_pipeline.InputError(f"{what}: {len(files)} shard files cannot be split over "
                                    f"{hosts} hosts; prepare at least as many shards as hosts")
  entries = input_pipeline.index_tracks(
      files[host::hosts], cache_dir=cache_dir,
      skip_corrupt=bool(config.input.get("skip_corrupt_records", False)))
  owned = input_pipeline.owned_identities([e.identity for e in entries], host)
  entries = [e for e in entries if e.identity in owned]
  excluded = (input_pipeline.read_exclusions(config.input.exclude_identities)
              if config.input.get("exclude_identities") else set())
  n_global = config.train.identities_per_batch
  if n_global % (hosts * jax.local_device_count()):
    raise input_pipeline.InputError(
        f"train.identities_per_batch={n_global} must split evenly over {hosts} host(s) x "
        f"{jax.local_device_count()} local devices")
  return input_pipeline.TrainSampler(
      entries, spec, identities_per_batch=n_global // hosts,
      num_windows=config.input.num_windows, seed=seed, host_index=host,
      flip_prob=config.input.flip_prob if what == "training" else 0.0,
      require_audio=config.input.require_audio, excluded=excluded,
      where=f"{what} records {record_path!r} on host {host}")


def records_skipped(config, record_path: str) -> int:
  """Records this host skips in a record set (corrupt shards, input.skip_corrupt_records)."""
  files = records.list_shards(inference.record_set(config, record_path))
  hosts, host = jax.process_count(), jax.process_index()
  return records.readable_records(files[host::hosts], skip_corrupt=True).records_skipped


def device_batches(ds):
  """numpy batches of a tf.data pipeline, reshaped to [local devices, per device, ...]."""
  devices = jax.local_device_count()
  for batch in ds.as_numpy_iterator():
    yield input_pipeline.shard_for_devices(batch, devices)


def prefetched_batches(ds, size: int = 2):
  """device_batches already on the devices, `size` ahead (double buffering: the next batch is
  copied while a step runs)."""
  return flax.jax_utils.prefetch_to_device(device_batches(ds), size)


# ----------------------------------------------------------------------------------------------
# Loop


class _MetricBuffer:
  """Per-step device metrics, fetched (and checked for NaN) only when logging or saving."""

  def __init__(self, workdir: workdir_lib.Workdir):
    self.workdir, self.pending, self.last = workdir, [], {}

  def add(self, step: int, metrics) -> None:
    self.pending.append((step, metrics))

  def flush(self, extra: Optional[dict] = None) -> Optional[dict]:
    if not self.pending:
      return self.last
    fetched = [(s, jax.device_get(flax.jax_utils.unreplicate(m))) for s, m in self.pending]
    self.pending = []
    for step, metrics in fetched:
      workdir_lib.check_finite(step, float(metrics["loss"]), self.workdir)
    mean = {k: float(np.mean([m[k] for _, m in fetched])) for k in fetched[0][1]}
    mean.update(extra or {})
    self.workdir.write_metrics(fetched[-1][0], mean, prefix="train/")
    self.last = mean
    return mean


def _checkpoint_tree(state: TrainState) -> dict:
  return {"params": state.params, "batch_stats": state.batch_stats,
          "opt_state": state.opt_state, "step": state.step}


def validate(p_eval_step, state, sampler, num_steps: int) -> dict:
  ds = input_pipeline.train_dataset(sampler, start_step=0, num_steps=num_steps)
  values = [jax.device_get(flax.jax_utils.unreplicate(p_eval_step(state, batch)))
            for batch in device_batches(ds)]
  return {k: float(np.mean([v[k] for v in values])) for k in values[0]}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       force: bool = False) -> TrainState:
  """Trains (or resumes) to config.train.num_steps; returns the final (host) state."""
  from tqdm import tqdm
  spec = input_pipeline.WindowSpec.from_model_config(config.model)
  model = create_model(config)
  has_val = bool(config.data.get("val"))
  work = workdir_lib.Workdir(workdir, config, force=force,
                             best_metric="val/loss" if has_val else None, best_mode="min")
  cache_dir = str(work.path / "input_index")
  sampler = make_sampler(config, spec, config.data.train, seed=config.train.seed,
                         cache_dir=cache_dir, what="training")
  val_sampler = None
  if has_val:
    try:
      val_sampler = make_sampler(config, spec, config.data.val, seed=config.train.seed + 1,
                                 cache_dir=cache_dir, what="validation")
    except (input_pipeline.InputError, FileNotFoundError) as e:
      log.warning("no validation: %s", e)
  if config.input.get("skip_corrupt_records", False):
    skipped = {"records_skipped_training": records_skipped(config, config.data.train)}
    if val_sampler is not None:
      skipped["records_skipped_validation"] = records_skipped(config, config.data.val)
    if any(skipped.values()):
      log.warning("corrupt records skipped (input.skip_corrupt_records): %s", skipped)
    work.write_metrics(0, skipped, prefix="input/")

  state = create_train_state(config, model, spec, jax.random.PRNGKey(config.train.seed))
  start_step = 0
  if work.latest_step() is not None:
    restored, extra = work.restore(jax.device_get(_checkpoint_tree(state)))
    state = state.replace(**restored)
    start_step = int(restored["step"])
    log.info("resumed from step %d of %s (%s)", start_step, work.path, extra)
  num_steps = int(config.train.num_steps)
  n_mels = detector.whisper_dims(config.model.audio).n_mels
  step_fn = functools.partial(train_step, model=model, config=config, n_mels=n_mels)
  p_train_step = jax.pmap(step_fn, axis_name="batch", donate_argnums=(0,))
  p_eval_step = jax.pmap(functools.partial(eval_step, model=model, config=config, n_mels=n_mels),
                         axis_name="batch")
  state = flax.jax_utils.replicate(state)
  metrics = _MetricBuffer(work)
  windows_per_step = config.train.identities_per_batch * config.input.num_windows
  log.info("training steps %d..%d: %d identities x %d windows per step, %d steps per epoch "
           "(every identity once), %d devices", start_step, num_steps,
           config.train.identities_per_batch, config.input.num_windows,
           sampler.steps_per_epoch, jax.device_count())

  def save(step: int) -> None:
    values = metrics.flush()  # the NaN guard runs before anything is written
    val = None
    if val_sampler is not None and (step % config.train.val_every_steps == 0 or
                                    step == num_steps):
      val = validate(p_eval_step, state, val_sampler, config.train.val_steps)
      work.write_metrics(step, val, prefix="val/")
      log.info("step %d: validation %s", step, {k: round(v, 4) for k, v in val.items()})
    host_state = jax.device_get(flax.jax_utils.unreplicate(_checkpoint_tree(state)))
    work.save(step, host_state, extra={"step": step, "train_loss": values.get("loss")},
              metrics={f"val/{k}": v for k, v in val.items()} if val else None)

  ds = input_pipeline.train_dataset(sampler, start_step=start_step, num_steps=num_steps,
                                    prefetch=config.input.prefetch)
  progress = tqdm(total=num_steps, initial=start_step, desc="train", unit="step",
                  disable=jax.process_index() != 0, dynamic_ncols=True)
  tick, step, last_logged = time.perf_counter(), start_step, start_step
  try:
    for step, batch in enumerate(prefetched_batches(ds), start=start_step + 1):
      state, step_metrics = p_train_step(state, batch)
      metrics.add(step, step_metrics)
      if step % config.train.log_every_steps == 0 or step == num_steps:
        elapsed = time.perf_counter() - tick
        logged = metrics.flush({"windows_per_second": windows_per_step * (step - last_logged) /
                                max(elapsed, 1e-9)})
        tick, last_logged = time.perf_counter(), step
        progress.set_postfix(loss=f"{logged['loss']:.4f}", intra=f"{logged['intra_loss']:.3f}",
                             cross=f"{logged['cross_loss']:.3f}",
                             win_s=f"{logged['windows_per_second']:.1f}")
      progress.update(step - progress.n)
      if step % config.train.checkpoint_every_steps == 0 and step != num_steps:
        save(step)
    if step == num_steps and work.latest_step() != num_steps:
      save(num_steps)
  finally:
    progress.close()
    work.close()
  final = jax.device_get(flax.jax_utils.unreplicate(state))
  if config.train.get("score_after_training") and config.data.get("test"):
    from inconsistency_jax import evaluate
    evaluate.evaluate(config, workdir)
  return final


def main(argv) -> None:
  from absl import app
  from absl import flags
  from data import logs
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logs.setup()
  workdir_lib.initialize_distributed(flags.FLAGS.tpu)
  train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir, force=flags.FLAGS.force)


def _define_flags() -> None:
  from absl import flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "run config (a configs/*.py file)",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "run directory: config, checkpoints, metrics")
  flags.DEFINE_bool("tpu", False, "multi-host JAX (TPU pod slice or multi-node GPU)")
  flags.DEFINE_bool("force", False, "train on top of checkpoints written with another config")
  flags.mark_flags_as_required(["config", "workdir"])


def cli():
  """Console-script entry point (errors and exit codes: data.cli_errors)."""
  workdir_lib.run_absl_cli(main, _define_flags, user_errors={
      records.RecordError: 2, input_pipeline.InputError: 2, checkpoints.CheckpointMismatchError: 2,
      inference.CheckpointNotFoundError: 2, inference.CheckpointMismatchError: 2})


if __name__ == "__main__":
  cli()
