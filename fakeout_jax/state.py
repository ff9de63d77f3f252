"""FakeOut's model state: creating, restoring and overlaying variables, and the evaluation step.

The one home of the code the commands share (finetune, pretrain, evaluate, predict), so that no
command imports another:

* the record sets a config names (`resolve_record_set`) and the model's input shapes;
* fresh variables, the variables a run starts from (`initial_variables`: scratch, an MMV or
  FakeOut pickle, a converted folder, a finetune workdir or a pre-training workdir) and the
  overlay of loaded variables onto fresh ones (`overlay`);
* the fine-tuning train state (optimiser, abstract shapes a workdir checkpoint restores onto);
* the variables of any checkpoint for evaluation (`load_variables`), the per-track evaluation
  step (`eval_step`) and its loop over a record set (`evaluate_tracks`).
"""
from __future__ import annotations

import functools
import logging
import pathlib
from typing import Any, Optional

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from data import records
from data import workdir as workdir_lib
from fakeout_jax import augment
from fakeout_jax import checkpoints
from fakeout_jax import input_pipeline
from fakeout_jax import models

log = logging.getLogger(__name__)

INIT_MODES = ("mmv", "fakeout", "flax", "pretrained", "scratch")


class TrainState(train_state.TrainState):
  batch_stats: Any


class ConfigError(ValueError):
  """The config names data or checkpoints that do not exist (raised before any compile)."""


# ----------------------------------------------------------------------------------------------
# Data and shapes


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


def input_shapes(config) -> tuple[tuple, Optional[tuple]]:
  c = config.input
  video = (1, c.num_frames, c.image_size, c.image_size, 3)
  audio = (1, input_pipeline.num_spectrogram_frames(c.audio_window), c.num_mel_bins, 1)
  return video, (audio if config.model.modality == "video_audio" else None)


# ----------------------------------------------------------------------------------------------
# Variables


def fresh_variables(config, model, rng) -> dict:
  video, audio = input_shapes(config)
  init = jax.jit(functools.partial(model.init, train=True))
  return flax.core.unfreeze(init(rng, jnp.zeros(video),
                                 None if audio is None else jnp.zeros(audio)))


def check_loop_counts(train_config) -> None:
  """The counts a training loop runs for or divides by: 0 would end in a ZeroDivisionError
  traceback, or in a "finished" run of no steps with exit 0."""
  for key in ("num_epochs", "log_every_steps", "checkpoint_every_steps", "eval_every_epochs"):
    if key in train_config and train_config[key] < 1:
      raise ConfigError(f"train.{key} must be >= 1, got {train_config[key]}")


def check_init(config) -> None:
  """The configured initialisation exists (before anything compiles)."""
  mode = config.init.mode
  if mode not in INIT_MODES:
    raise ConfigError(f"init.mode must be one of {', '.join(INIT_MODES)}; got {mode}")
  if mode == "scratch":
    return
  if not config.init.checkpoint:
    raise ConfigError(f"init.mode={mode!r} needs init.checkpoint (pass "
                      "--config.init.checkpoint=PATH, or use init.mode=scratch)")
  path = pathlib.Path(config.init.checkpoint)
  if not path.exists():
    raise ConfigError(f"init.checkpoint {config.init.checkpoint} does not exist")
  if mode == "pretrained" and not (path / "checkpoints").is_dir():
    raise ConfigError(f"init.mode='pretrained' needs a `python -m fakeout_jax.pretrain` workdir; "
                      f"{path} has no checkpoints/ folder")


def initial_variables(config, model, rng) -> dict:
  """Variables to start from: a fresh init, overwritten by the configured checkpoint.

  'pretrained' takes the backbone and MMV heads of a pre-training workdir (its best checkpoint,
  else its latest); the classifier, which pre-training does not have, stays fresh.
  """
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
    return overlay(variables, converted, partial=config.init.partial)
  if mode == "pretrained":
    loaded = pretrained_backbone(config.init.checkpoint)
    # Pre-training never trains the classifier: fine-tuning starts it fresh from its own seed.
    loaded = {kind: {k: v for k, v in tree.items() if k != "classifier"}
              for kind, tree in loaded.items()}
    return overlay(variables, loaded, partial=True, allow_missing=("classifier",))
  return overlay(variables, checkpoints.restore_variables(config.init.checkpoint),
                 partial=config.init.partial)


def is_pretrain_workdir(path: pathlib.Path) -> bool:
  """A `python -m fakeout_jax.pretrain` workdir (its config.json has a 'pretrain' section)."""
  import json  # pylint: disable=import-outside-toplevel
  saved = pathlib.Path(path) / "config.json"
  return saved.is_file() and "pretrain" in json.loads(saved.read_text())


def pretrained_backbone(workdir: str) -> dict:
  """{'params', 'batch_stats'} of a pre-training workdir (best checkpoint, else latest)."""
  path = pathlib.Path(workdir)
  saved = path / "config.json"
  if not saved.is_file():
    raise ConfigError(f"{path} has no config.json: not a `python -m fakeout_jax.pretrain` "
                      "workdir")
  import json  # pylint: disable=import-outside-toplevel
  pretrain_config = ml_collections.ConfigDict(json.loads(saved.read_text()))
  run = workdir_lib.Workdir(path, pretrain_config, force=True, best_metric="val_loss",
                            best_mode="min", write_config=False)
  which = "best" if run.best is not None and run.best.best_step() is not None else "latest"
  restored, _ = run.restore(None, which=which)
  run.close()
  variables = {"params": restored["params"], "batch_stats": restored["batch_stats"]}
  log.info("initialised from the %s checkpoint of pre-training run %s", which, path)
  return variables


def overlay(fresh: dict, loaded: dict, partial: bool, allow_missing: tuple = ()) -> dict:
  """`fresh` with every entry `loaded` has; without `partial`, both must have the same tree.

  With `allow_missing` (top-level parameter modules, e.g. the classifier) only those may be
  absent from `loaded`; anything else missing is an error even when `partial`.
  """
  flat_fresh = flax.traverse_util.flatten_dict(fresh)
  flat_loaded = flax.traverse_util.flatten_dict(flax.core.unfreeze(loaded))
  missing = sorted("/".join(k) for k in flat_fresh if k not in flat_loaded)
  unexpected = sorted("/".join(k) for k in flat_loaded if k not in flat_fresh)
  wrong = sorted("/".join(k) for k in flat_fresh if k in flat_loaded and
                 np.shape(flat_loaded[k]) != np.shape(flat_fresh[k]))
  if allow_missing:
    not_allowed = [m for m in missing if m.split("/")[1] not in allow_missing]
  else:
    not_allowed = missing if not partial else []
  if wrong or unexpected or not_allowed:
    raise checkpoints.CheckpointMismatchError(
        f"the checkpoint does not fit the model: missing {missing[:5]}{'...' * (len(missing) > 5)}"
        f", unexpected {unexpected[:5]}, mis-shaped {wrong[:5]} (init.partial=True keeps fresh "
        "values for missing entries)")
  merged = {k: np.asarray(flat_loaded.get(k, v)) for k, v in flat_fresh.items()}
  if missing:
    log.warning("%d variables not in the checkpoint stay freshly initialised (e.g. %s)",
                len(missing), missing[:3])
  return flax.traverse_util.unflatten_dict(merged)


# ----------------------------------------------------------------------------------------------
# The fine-tuning train state


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


def carried_model_config(checkpoint: str) -> Optional[dict]:
  """The model config a checkpoint carries: a workdir's config.json, a converted folder's
  conversion.json (None for a pickle). Refuses the inconsistency detector's workdirs."""
  import json  # pylint: disable=import-outside-toplevel
  path = pathlib.Path(checkpoint)
  if (path / "config.json").is_file():
    model = json.loads((path / "config.json").read_text()).get("model", {})
    if "width_mult" not in model:
      raise ConfigError(f"{path} is not a FakeOut workdir (its config.json has no "
                        "model.width_mult; an inconsistency detector run?): use "
                        "inconsistency_jax's commands for it")
    return model
  if path.is_dir():
    return checkpoints.read_metadata(path).get("model_config")
  return None


def check_model_config(config: ml_collections.ConfigDict, checkpoint: str,
                       source: str = "--config") -> None:
  """ConfigError naming both when `config.model` differs from the checkpoint's own model."""
  import json  # pylint: disable=import-outside-toplevel
  carried = carried_model_config(checkpoint)
  if carried is None:
    return
  ours = json.loads(json.dumps(config.model.to_dict(), default=str))
  # The computation dtype is no property of the weights (they are float32 either way).
  shared = {k: carried[k] for k in carried if k in ours and k != "dtype"}
  changed = sorted(workdir_lib._diff_keys(shared, {k: ours[k] for k in shared}))  # noqa: SLF001
  if changed:
    key = changed[0]

    def value(tree):
      for part in key.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
      return tree
    raise ConfigError(
        f"{checkpoint} holds a model with model.{key}={value(carried)!r}, but {source} asks for "
        f"model.{key}={value(ours)!r}" + (f" ({len(changed)} keys differ)" if len(changed) > 1
                                          else "") +
        "; drop --config to use the checkpoint's own model config, or pass a matching one")


def check_variables(config: ml_collections.ConfigDict, variables: dict, where: str) -> None:
  """ConfigError unless `variables` have the shapes `config.model` builds (before any input
  is decoded: a mismatch otherwise surfaces as a Flax shape error deep in the first batch)."""
  model = models.create_model(config.model)
  expected = jax.eval_shape(lambda: fresh_variables(config, model, jax.random.PRNGKey(0)))
  expected = {k: expected[k] for k in ("params", "batch_stats") if k in expected}
  mismatch = workdir_lib.shape_mismatch(expected, {k: variables.get(k, {}) for k in expected})
  if mismatch:
    raise ConfigError(f"the checkpoint {where} does not fit the config's model "
                      f"({config.model.get('backbone', config.get('name', ''))}): {mismatch}")


def load_variables(config: ml_collections.ConfigDict, checkpoint: str,
                   which: str = "best") -> dict:
  """{'params', 'batch_stats'} from a finetune or pretrain workdir, a converted folder or a
  pickle."""
  model = models.create_model(config.model)
  path = pathlib.Path(checkpoint)
  if path.is_file():
    template = jax.eval_shape(lambda: fresh_variables(config, model, jax.random.PRNGKey(0)))
    variables, report = checkpoints.convert(checkpoints.load_haiku_checkpoint(path), template,
                                            head="checkpoint")
    log.info("loaded %s: %s", path, report.summary())
    return variables
  if is_pretrain_workdir(path):
    # Its classifier is the untrained one pre-training carries along: the fake scores mean
    # nothing, the video-audio agreement of the embeddings (av_cosine, Fig. 4) is the point.
    log.warning("%s is a pre-training run: its classifier is untrained; read its av_cosine", path)
    variables = pretrained_backbone(str(path))
    check_variables(config, variables, str(path))
    return variables
  if (path / "checkpoints").is_dir():
    run = workdir_lib.Workdir(path, config, force=True, best_metric="val_auc",
                              write_config=False)
    if which == "best" and run.best is not None and run.best.best_step() is None:
      log.warning("%s has no best checkpoint (no validation ran); using the latest", path)
      which = "latest"
    state, _ = run.restore(abstract_train_state(config, model), which=which)
    run.close()
    return {"params": state.params, "batch_stats": state.batch_stats}
  if checkpoints.has_variables(path):
    variables = checkpoints.restore_variables(path)
    check_variables(config, variables, str(path))
    return variables
  raise FileNotFoundError(f"{path} is neither a FakeOut pickle, a finetune workdir nor a folder "
                          "written by `python -m fakeout_jax.convert`")


# ----------------------------------------------------------------------------------------------
# Evaluation (run under pmap, axis 'batch')


def forward(model, variables, batch, train: bool):
  """The model on a batch; uint8 frames (training batches) are scaled to [0, 1] first."""
  audio = batch.get("audio") if model.modality == "video_audio" else None
  return model.apply(variables, augment.frames_to_float(batch["video"]), audio, train=train,
                     mutable=["batch_stats"] if train else False)


def eval_step(state: TrainState, batch: dict, model):
  """Per-track fake probability: the mean of softmax[:, 1] over the track's N clips."""
  b, n = batch["video"].shape[:2]
  flat = {"video": batch["video"].reshape((b * n,) + batch["video"].shape[2:])}
  if "audio" in batch:
    flat["audio"] = batch["audio"].reshape((b * n,) + batch["audio"].shape[2:])
  outputs = forward(model, {"params": state.params, "batch_stats": state.batch_stats}, flat,
                    train=False)
  clip_scores = jax.nn.softmax(outputs["logits"].astype(jnp.float32))[:, 1].reshape(b, n)
  out = {"score": clip_scores.mean(axis=1), "clip_scores": clip_scores}
  embeddings = outputs.get("vid_embd"), outputs.get("aud_embd")
  if all(e is not None for e in embeddings):
    vid, aud = (e.reshape(b, n, -1) for e in (embeddings[0]["toaud"], embeddings[1]["tovid"]))

    def mean_cosine(v, a):
      norms = jnp.linalg.norm(v, axis=-1) * jnp.linalg.norm(a, axis=-1)
      return (jnp.sum(v * a, -1) / (norms + 1e-8)).mean(axis=1)
    out["av_cosine"] = mean_cosine(vid, aud)
    # The same after subtracting the track's mean embedding of each modality over its N clips:
    # agreement of WHEN things change (what pretrain.center_within_track trains), not of a
    # face with a voice.
    centred = lambda x: x - x.mean(axis=1, keepdims=True)
    out["av_cosine_centered"] = mean_cosine(centred(vid), centred(aud))
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
      for key in ("av_cosine", "av_cosine_centered"):
        if key in scores:
          row[key] = float(scores[key][i])
      rows.append(row)
  return rows
