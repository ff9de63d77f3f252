r"""Self-supervised audio-visual pre-training of FakeOut's backbone with MMV's objective.

  python -m fakeout_jax.pretrain --config fakeout_jax/configs/pretrain_synthetic_tiny.py \
      --config.data.root=demo_out/records --workdir demo_out/pretrain [--tpu]

MMV (Alayrac et al., NeurIPS 2020) learns its video and audio towers from unlabeled video: the
video tower's representation goes through the video->audio head, the audio tower's through the
audio->video head, both into the shared video-audio space S_va, and an NCE loss pulls together
the two embeddings of the SAME clip (same video, same time span) and pushes apart every other
clip of the batch. Here:

* the network is FakeOut's own module (fakeout_jax.models.FakeOut) with the module and
  parameter names the MMV converter fills (video_encoder, audio_encoder,
  embedding_heads/video_to_audio, embedding_heads/audio_to_video): a pre-trained workdir and a
  converted MMV checkpoint are interchangeable starting points of
  ``python -m fakeout_jax.finetune --config.init.mode=pretrained --config.init.checkpoint=DIR``
  (the classifier exists in the variables but is frozen here and fresh in fine-tuning);
* the loss is symmetric NCE (video->audio and audio->video cross-entropy over the similarity
  row of each clip, averaged), with negatives from the GLOBAL batch: each device's embeddings
  are all-gathered over every device of every host (`jax.lax.all_gather` over the pmap axis);
* labels are ignored: any record set is a source (the reals of a deepfake set with
  ``pretrain.keep_labels=(0,)``, VoxCeleb2, or a folder of videos prepared by data.prepare);
* MMV's MIL-NCE to narration text is NOT implemented: ``pretrain.text_loss_weight`` must stay
  0 (a clear config error otherwise).

Habits shared with finetune: pmap over every local device, cross-replica batch norm, orbax
checkpoints (latest every N steps and at each epoch's end; best by validation NCE loss), exact
resume after a kill (the data position is a function of the step, every random draw a function
of (seed, epoch, index)), a stop on a non-finite loss, TensorBoard + metrics.jsonl, a progress
bar. Every choice the paper leaves open is a field of the config (configs/pretrain_*.py).
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time
from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tensorflow as tf
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

BEST_METRIC = "val_loss"


@dataclasses.dataclass(frozen=True)
class LabelFilter(input_pipeline.RecordFilter):
  """A record filter that also keeps only tracks of some labels (empty: every label)."""
  keep_labels: tuple = ()

  def keep(self, record) -> tf.Tensor:
    keep = super().keep(record)
    if self.keep_labels:
      keep = tf.logical_and(keep, tf.reduce_any(tf.equal(
          record["label"], tf.constant(list(self.keep_labels), record["label"].dtype))))
    return keep


def record_filter(config, record_set) -> LabelFilter:
  return LabelFilter(tuple(record_set.get("keep_methods", ())),
                     tuple(record_set.get("keep_categories", ())),
                     tuple(config.pretrain.keep_labels))


# ----------------------------------------------------------------------------------------------
# Config


def check_config(config: ml_collections.ConfigDict) -> dict[str, list[str]]:
  """Resolves the record sets and checks the objective's options before anything compiles."""
  files = {"train": state_lib.resolve_record_set(config, config.data.train)}
  if config.data.get("val"):
    files["val"] = state_lib.resolve_record_set(config, config.data.val)
  state_lib.check_loop_counts(config.train)
  p = config.pretrain
  if p.text_loss_weight:
    raise state_lib.ConfigError(
        "pretrain.text_loss_weight > 0 asks for MMV's MIL-NCE to narration text, which this "
        "project does not implement (records carry no transcripts); keep it 0")
  if config.model.modality != "video_audio":
    raise state_lib.ConfigError("pre-training needs model.modality='video_audio' (the NCE "
                                f"pairs video with audio); got {config.model.modality!r}")
  if not config.model.compute_embeddings:
    raise state_lib.ConfigError("pre-training needs model.compute_embeddings=True")
  if p.temperature <= 0:
    raise state_lib.ConfigError(f"pretrain.temperature must be > 0, got {p.temperature}")
  if config.input.oversample != "none":
    raise state_lib.ConfigError("pre-training ignores labels: set input.oversample='none'")
  if config.train.batch_size % jax.device_count():
    raise state_lib.ConfigError(f"train.batch_size {config.train.batch_size} must be divisible "
                                f"by the {jax.device_count()} devices")
  if config.train.batch_size // jax.device_count() < 1 or config.train.batch_size < 2:
    raise state_lib.ConfigError("NCE needs negatives: train.batch_size must be >= 2")
  negatives = p.get("negatives", "batch")
  clips = int(config.input.get("clips_per_track", 1))
  if negatives not in ("batch", "same_track"):
    raise state_lib.ConfigError(
        f"pretrain.negatives must be 'batch' or 'same_track', got {negatives!r}")
  if negatives == "same_track" and (
      clips < 2 or (config.train.batch_size // jax.device_count()) % clips):
    raise state_lib.ConfigError(
        "pretrain.negatives='same_track' needs input.clips_per_track >= 2 dividing the "
        f"per-device batch ({config.train.batch_size // jax.device_count()}); got {clips}")
  if p.get("center_within_track", False) and negatives != "same_track":
    raise state_lib.ConfigError("pretrain.center_within_track needs pretrain.negatives="
                                "'same_track' (the mean is taken over the clips of one track)")
  return files


def negatives_group_size(config) -> int:
  """0: every other clip of the global batch is a negative; K: only the K clips of one track."""
  if config.pretrain.get("negatives", "batch") == "same_track":
    return int(config.input.clips_per_track)
  return 0


# ----------------------------------------------------------------------------------------------
# The objective


def nce_loss(video: jax.Array, audio: jax.Array, temperature: float, normalize: bool,
             axis_name: Optional[str] = "batch", group_size: int = 0,
             center: bool = False) -> tuple[jax.Array, dict]:
  """Symmetric NCE of this device's clips against the global batch.

  video, audio: [b, D] embeddings in S_va of this device's b clips (row i of both = one clip).
  Scores are dot products / temperature (cosines with ``normalize``). Row i's positive is its
  own clip's other modality; its negatives are the other modality of every other clip of the
  global batch, or with ``group_size`` K > 0 only of the other clips of its own group of K
  consecutive clips of the global batch (the K clips of one track: other times of the same
  video). With ``center`` (needs ``group_size``) each group's mean embedding is subtracted from
  its rows, per modality, before the normalisation: the scores then compare only what differs
  between the clips of one video. Groups never straddle devices (the per-device batch is a
  multiple of K). Returns the mean loss of this device's rows (pmean it for the global mean)
  and retrieval accuracies.
  """
  video = video.astype(jnp.float32)
  audio = audio.astype(jnp.float32)
  if center:
    if not group_size:
      raise ValueError("center=True needs group_size > 0 (the clips of one track)")
    video, audio = (x - jnp.repeat(x.reshape(-1, group_size, x.shape[-1]).mean(1), group_size, 0)
                    for x in (video, audio))
  if normalize:
    video = video / (jnp.linalg.norm(video, axis=-1, keepdims=True) + 1e-6)
    audio = audio / (jnp.linalg.norm(audio, axis=-1, keepdims=True) + 1e-6)
  b = video.shape[0]
  if axis_name is None:
    all_video, all_audio, first = video, audio, 0
  else:
    all_video = jax.lax.all_gather(video, axis_name, tiled=True)
    all_audio = jax.lax.all_gather(audio, axis_name, tiled=True)
    first = jax.lax.axis_index(axis_name) * b
  targets = first + jnp.arange(b)
  video_to_audio = video @ all_audio.T / temperature    # [b, global batch]
  audio_to_video = audio @ all_video.T / temperature
  mean_similarity = jnp.mean(video_to_audio) * temperature
  if group_size:
    columns = jnp.arange(all_video.shape[0])
    same = (targets[:, None] // group_size) == (columns[None, :] // group_size)
    video_to_audio = jnp.where(same, video_to_audio, -jnp.inf)
    audio_to_video = jnp.where(same, audio_to_video, -jnp.inf)
  loss_va = optax.softmax_cross_entropy_with_integer_labels(video_to_audio, targets)
  loss_av = optax.softmax_cross_entropy_with_integer_labels(audio_to_video, targets)
  loss = 0.5 * (loss_va + loss_av).mean()
  positives = jnp.take_along_axis(video_to_audio, targets[:, None], axis=1)[:, 0]
  metrics = {
      "nce_loss": loss,
      "video_to_audio_top1": jnp.mean(jnp.argmax(video_to_audio, -1) == targets),
      "audio_to_video_top1": jnp.mean(jnp.argmax(audio_to_video, -1) == targets),
      "positive_similarity": jnp.mean(positives) * temperature,
      "mean_similarity": mean_similarity,
  }
  return loss, metrics


def _embeddings(outputs) -> tuple[jax.Array, jax.Array]:
  """S_va: video -> audio head output, audio -> video head output (MMV's fac design)."""
  return outputs["vid_embd"]["toaud"], outputs["aud_embd"]["tovid"]


def train_step(state: state_lib.TrainState, batch: dict, model, temperature: float,
               normalize: bool, group_size: int = 0, center: bool = False,
               augment_params: Optional[augment.AugmentParams] = None):
  # uint8 clips scaled and (with ``augment_seed`` in the batch) augmented on the device.
  batch = {"video": augment.train_video(batch, augment_params), "audio": batch["audio"]}

  def loss_fn(params):
    variables = {"params": params, "batch_stats": state.batch_stats}
    outputs, updates = state_lib.forward(model, variables, batch, train=True)
    loss, metrics = nce_loss(*_embeddings(outputs), temperature, normalize,
                             group_size=group_size, center=center)
    return loss, (metrics, updates["batch_stats"])

  (_, (metrics, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  # Each device's loss covers its own rows; all_gather's transpose already routes the other
  # devices' gradients back, so the mean over devices is the gradient of the global mean loss.
  grads = jax.lax.pmean(grads, axis_name="batch")
  metrics = jax.lax.pmean(metrics, axis_name="batch")
  metrics["grad_norm"] = optax.tree.norm(grads)
  return state.apply_gradients(grads=grads, batch_stats=new_stats), metrics


def eval_step(state: state_lib.TrainState, batch: dict, model, temperature: float,
              normalize: bool, group_size: int = 0, center: bool = False):
  outputs = state_lib.forward(model, {"params": state.params, "batch_stats": state.batch_stats},
                              batch, train=False)
  _, metrics = nce_loss(*_embeddings(outputs), temperature, normalize, group_size=group_size,
                        center=center)
  return jax.lax.pmean(metrics, axis_name="batch")


# ----------------------------------------------------------------------------------------------
# State


def learning_rate_schedule(config, total_steps: int) -> optax.Schedule:
  """Linear warm-up to the peak, then cosine decay to cosine_alpha * peak."""
  t = config.train
  warmup = min(int(t.warmup_steps), max(0, total_steps - 1))
  return optax.warmup_cosine_decay_schedule(
      0.0, t.learning_rate, warmup_steps=warmup, decay_steps=max(total_steps, warmup + 1),
      end_value=t.learning_rate * t.cosine_alpha)


def make_optimizer(config, total_steps: int, params) -> optax.GradientTransformation:
  """Adam(W) on the backbone and MMV heads; the classifier (not part of MMV) stays frozen."""
  t = config.train
  schedule = learning_rate_schedule(config, total_steps)
  adam = optax.adamw(schedule, t.adam_b1, t.adam_b2, t.adam_eps, weight_decay=t.weight_decay)
  if t.gradient_clip_norm:
    adam = optax.chain(optax.clip_by_global_norm(t.gradient_clip_norm), adam)
  labels = jax.tree_util.tree_map_with_path(
      lambda path, _: "frozen" if path[0].key == "classifier" else "train", params)
  return optax.multi_transform({"train": adam, "frozen": optax.set_to_zero()}, labels)


def create_state(config, model, total_steps: int) -> state_lib.TrainState:
  variables = state_lib.fresh_variables(config, model, jax.random.PRNGKey(config.train.seed))
  return state_lib.TrainState.create(
      apply_fn=model.apply, params=variables["params"], batch_stats=variables["batch_stats"],
      tx=make_optimizer(config, total_steps, variables["params"]))


# ----------------------------------------------------------------------------------------------
# The loop


def pretrain(config: ml_collections.ConfigDict, workdir: str, *,
             force: bool = False) -> state_lib.TrainState:
  files = check_config(config)
  host = input_pipeline.HostShard.from_jax()
  local = jax.local_device_count()
  per_host = config.train.batch_size // jax.process_count()
  train_filter = record_filter(config, config.data.train)
  skip_corrupt = bool(config.input.get("skip_corrupt_records", False))
  counts = input_pipeline.count_labels(input_pipeline._host_files(files["train"], host),
                                       train_filter, skip_corrupt=skip_corrupt)
  clips_per_epoch = sum(counts.values()) * int(config.input.get("clips_per_track", 1))
  steps_per_epoch = clips_per_epoch // per_host
  if steps_per_epoch == 0:
    raise state_lib.ConfigError(f"{clips_per_epoch} clips of {sum(counts.values())} tracks "
                                f"({counts}) cannot fill one batch of {per_host} on this host")
  total_steps = steps_per_epoch * config.train.num_epochs
  log.info("pre-training on %d tracks (per label %s): %d steps per epoch, %d in total",
           sum(counts.values()), counts, steps_per_epoch, total_steps)
  # Only now, with the records read and the batch fillable: a refused run leaves no workdir.
  run = workdir_lib.Workdir(workdir, config, force=force, best_metric=BEST_METRIC,
                            best_mode="min")

  model = models.create_model(config.model, axis_name="batch")
  state = create_state(config, model, total_steps)
  if run.latest_step() is not None:
    state, _ = run.restore(jax.device_get(state))
    log.info("resumed from step %d", int(state.step))
  step = int(state.step)
  state = jax_utils.replicate(state)
  objective = dict(temperature=float(config.pretrain.temperature),
                   normalize=bool(config.pretrain.normalize_embeddings),
                   group_size=negatives_group_size(config),
                   center=bool(config.pretrain.get("center_within_track", False)))
  p_train_step = jax.pmap(functools.partial(
      train_step, model=model, augment_params=augment.AugmentParams.from_config(config.input),
      **objective), axis_name="batch", donate_argnums=(0,))
  p_eval_step = jax.pmap(functools.partial(eval_step, model=model, **objective),
                         axis_name="batch")
  schedule = learning_rate_schedule(config, total_steps)

  def save(step, metrics=None):
    run.save(step, jax.device_get(jax_utils.unreplicate(state)), extra={"step": step},
             metrics=metrics)

  progress = logs.progress(total=total_steps, initial=step, desc="pretrain", unit="step")
  window_start, window_steps = time.perf_counter(), 0
  while step < total_steps:
    epoch, offset = divmod(step, steps_per_epoch)
    ds = input_pipeline.train_dataset(
        files["train"], config.input, batch_size=per_host, seed=config.train.seed, epoch=epoch,
        start_index=offset * per_host, host=host, record_filter=train_filter,
        label_counts=counts)
    batches = ({k: b[k] for k in ("video", "audio", "augment_seed") if k in b}
               for b in input_pipeline.iterate(ds, local))
    # Double buffering: the next batch is copied to the devices while this step runs.
    for batch in jax_utils.prefetch_to_device(batches, 2):
      state, metrics = p_train_step(state, batch)
      step += 1
      window_steps += 1
      loss = float(metrics["nce_loss"][0])
      workdir_lib.check_finite(step, loss + 0.0 * float(metrics["grad_norm"][0]), run)
      progress.update(1)
      if step % config.train.log_every_steps == 0 or step == total_steps:
        elapsed = time.perf_counter() - window_start
        clips_per_s = window_steps * config.train.batch_size / max(elapsed, 1e-9)
        progress.set_postfix(loss=f"{loss:.4f}", clips_per_s=f"{clips_per_s:.1f}")
        scalars = {k: float(v[0]) for k, v in metrics.items()}
        run.write_metrics(step, {**scalars, "clips_per_s": clips_per_s,
                                 "learning_rate": float(schedule(step))}, prefix="train/")
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
  """NCE loss and retrieval accuracy on held-out videos: fixed clips, no augmentation."""
  c = ml_collections.ConfigDict(config.input.to_dict())
  c.augment = False
  per_host = config.train.batch_size // jax.process_count()
  val_filter = record_filter(config, config.data.val)
  try:
    ds = input_pipeline.train_dataset(files, c, batch_size=per_host, seed=config.train.seed,
                                      epoch=0, host=input_pipeline.HostShard.from_jax(),
                                      record_filter=val_filter)
  except ValueError as e:
    log.warning("validation at step %d skipped: %s", step, e)
    return None
  totals = []
  for batch in input_pipeline.iterate(ds, jax.local_device_count()):
    out = jax.device_get(p_eval_step(state, {k: batch[k] for k in ("video", "audio")}))
    totals.append({k: float(v[0]) for k, v in out.items()})
  if not totals:
    return None
  metrics = {f"val_{k}": float(np.mean([t[k] for t in totals])) for k in totals[0]}
  metrics[BEST_METRIC] = metrics.pop("val_nce_loss")
  run.write_metrics(step, metrics)
  log.info("step %d: validation NCE loss %.4f, video->audio top-1 %.3f (batches of %d)", step,
           metrics[BEST_METRIC], metrics["val_video_to_audio_top1"], per_host)
  return metrics


def main(argv) -> None:
  del argv
  from absl import flags
  FLAGS = flags.FLAGS
  logs.setup(FLAGS.verbose)
  workdir_lib.initialize_distributed(FLAGS.tpu)
  pretrain(FLAGS.config, FLAGS.workdir, force=FLAGS.force)


def _define_flags():
  from absl import flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "pre-training config file "
                                  "(fakeout_jax/configs/pretrain_*.py)", lock_config=True)
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
