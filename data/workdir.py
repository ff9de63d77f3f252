"""A training run's working directory: its config, checkpoints, metrics and logs on disk.

Both detectors' training commands use it, so that every table can be traced to the run that made
it::

  WORKDIR/
    config.json            the full ConfigDict the run was started with (refuses another one)
    checkpoints/latest/    orbax checkpoints every N steps and at the end (for resuming)
    checkpoints/best/      the best checkpoint by the validation metric
    metrics.jsonl          one JSON line per logged step / evaluation
    tensorboard/           the same metrics as TensorBoard event files

Multi-host: every process calls the same methods (orbax coordinates checkpoint writes); only
process 0 writes config.json, metrics.jsonl and TensorBoard events.
"""
from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import logging
import math
import pathlib
from typing import Any, Mapping, Optional

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from data import cli_errors

log = logging.getLogger(__name__)


class WorkdirError(RuntimeError):
  """The workdir belongs to another run (or is otherwise unusable); the message says why."""


class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN/inf loss; the last good checkpoint was kept."""


class DiskFullError(cli_errors.RunFailed):
  """A checkpoint could not be written for lack of space; the previous one is kept (exit 1)."""


def initialize_distributed(multi_host: bool) -> None:
  """Multi-host JAX (TPU pod slices, multi-node GPU): one process per host, auto-configured.

  On a TPU VM slice `jax.distributed.initialize()` finds its peers from the TPU metadata; on GPU
  clusters it reads the coordinator address from the environment (SLURM or JAX_* variables).
  """
  if multi_host:
    jax.distributed.initialize()
  log.info("JAX process %d/%d, %d local / %d global devices (%s)", jax.process_index(),
           jax.process_count(), jax.local_device_count(), jax.device_count(),
           jax.devices()[0].platform)


def _comparable(config: Mapping[str, Any]) -> dict:
  """The config minus fields that may change between a run and its resumption."""
  config = json.loads(json.dumps(config, default=str))
  for key in ("workdir", "resume"):
    config.pop(key, None)
  return config


class Workdir:
  """Config bookkeeping, orbax checkpoints (latest + best), metrics; see the module docstring."""

  def __init__(self, path: str | pathlib.Path, config: ml_collections.ConfigDict, *,
               force: bool = False, keep_latest: int = 2, best_metric: Optional[str] = None,
               best_mode: str = "max", write_config: bool = True):
    """`write_config=False` opens a run only to read its checkpoints (evaluation)."""
    self.path = pathlib.Path(path).absolute()
    if self.path.exists() and not self.path.is_dir():
      raise WorkdirError(f"--workdir {self.path} is a file, not a folder")
    self.is_writer = jax.process_index() == 0
    self._pending_config: Optional[dict] = None
    if write_config:
      self._check_config(config, force)
      try:
        self.path.mkdir(parents=True, exist_ok=True)
      except OSError as e:
        raise WorkdirError(f"--workdir {self.path} cannot be created ({e.strerror})") from None
    elif not (self.path / "checkpoints").is_dir():
      raise WorkdirError(f"{self.path} holds no checkpoints (is it a training workdir?)")
    if self.is_writer:
      remove_stale_checkpoint_temporaries(self.path)
    self.best_metric = best_metric
    latest_options = ocp.CheckpointManagerOptions(max_to_keep=keep_latest, create=True,
                                                  enable_async_checkpointing=False)
    self.latest = ocp.CheckpointManager(self.path / "checkpoints" / "latest",
                                        options=latest_options)
    self.best = None
    if best_metric:
      best_options = ocp.CheckpointManagerOptions(
          max_to_keep=1, create=True, best_fn=lambda m: m[best_metric], best_mode=best_mode,
          keep_checkpoints_without_metrics=False, enable_async_checkpointing=False)
      self.best = ocp.CheckpointManager(self.path / "checkpoints" / "best",
                                        options=best_options)
    self._summary_writer = None
    self._metrics_file = None

  # -- config ------------------------------------------------------------------------------------

  def _check_config(self, config: ml_collections.ConfigDict, force: bool) -> None:
    """Refuses another run's workdir; --force never crosses detectors and writes config.json
    only once the existing checkpoint was restored with the new config (see restore/save)."""
    path = self.path / "config.json"
    current = _comparable(config.to_dict())
    if path.exists():
      previous = _comparable(json.loads(path.read_text()))
      has_checkpoints = any((self.path / "checkpoints").glob("*/*"))
      if has_checkpoints and _kind(previous) != _kind(current):
        raise WorkdirError(
            f"{self.path} holds checkpoints of a {_kind(previous) or 'different'} detector run"
            f", not a {_kind(current) or 'this'} one; --force cannot reuse it: use a new "
            "--workdir")
      if previous != current and has_checkpoints:
        if not force:
          changed = sorted(_diff_keys(previous, current))
          raise WorkdirError(
              f"{self.path} holds checkpoints of a run with another config (differs in: "
              f"{', '.join(changed[:8])}{' ...' if len(changed) > 8 else ''}). Use a new "
              "--workdir, or pass --force to train on top of them.")
        self._pending_config = config.to_dict()
        return
    if self.is_writer:
      self.path.mkdir(parents=True, exist_ok=True)
      _write_json(path, config.to_dict())

  def _commit_config(self) -> None:
    if self._pending_config is not None and self.is_writer:
      _write_json(self.path / "config.json", self._pending_config)
    self._pending_config = None

  # -- checkpoints -------------------------------------------------------------------------------

  def latest_step(self) -> Optional[int]:
    return self.latest.latest_step()

  def save(self, step: int, state: Any, extra: Optional[Mapping[str, Any]] = None,
           metrics: Optional[Mapping[str, float]] = None) -> None:
    """Saves `state` (a pytree of host arrays) and JSON `extra` (e.g. the data position)."""
    self._commit_config()
    args = ocp.args.Composite(state=ocp.args.StandardSave(state),
                              extra=ocp.args.JsonSave(dict(extra or {})))
    try:
      with _quiet_orbax_threads():
        self.latest.save(step, args=args, force=True)
        if self.best is not None and metrics is not None and self.best_metric in metrics:
          value = float(metrics[self.best_metric])
          if math.isfinite(value):
            self.best.save(step, args=args, metrics={self.best_metric: value}, force=True)
        self.latest.wait_until_finished()
    except Exception as e:  # noqa: BLE001 - orbax wraps OS errors in ValueError; re-raised
      if not _is_disk_full(e):
        raise
      # orbax writes into a temporary folder renamed when complete, so the previous step is
      # intact; the half-written folder only takes the space a re-run needs.
      if self.is_writer:
        remove_stale_checkpoint_temporaries(self.path, announce=False)
      last = self.latest.latest_step()
      raise DiskFullError(
          f"no space left on the device of --workdir {self.path} while saving the checkpoint "
          f"of step {step}",
          "free some space and re-run the same command; it resumes from step "
          f"{last}, the last complete checkpoint" if last is not None else
          "free some space and re-run the same command (no checkpoint was complete yet)"
      ) from e

  def restore(self, abstract_state: Any, step: Optional[int] = None, which: str = "latest"):
    """Returns (state, extra) of `step` (default: the newest) from 'latest' or 'best'."""
    manager = self.latest if which == "latest" else self.best
    if manager is None:
      raise WorkdirError(f"{self.path} keeps no '{which}' checkpoints")
    step = manager.latest_step() if step is None and which == "latest" else (
        step if step is not None else manager.best_step())
    if step is None:
      raise WorkdirError(f"no '{which}' checkpoint in {self.path}")
    try:
      restored = manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state), extra=ocp.args.JsonRestore()))
    except (ValueError, TypeError, KeyError) as e:  # orbax / tree mismatch: shapes, keys
      raise WorkdirError(
          f"the '{which}' checkpoint (step {step}) in {self.path} does not fit this config: "
          f"{_short(e)}") from None
    mismatch = shape_mismatch(abstract_state, restored["state"])
    if mismatch:
      raise WorkdirError(f"the '{which}' checkpoint (step {step}) in {self.path} does not fit "
                         f"this config: {mismatch}")
    self._commit_config()
    return restored["state"], dict(restored["extra"] or {})

  # -- metrics -----------------------------------------------------------------------------------

  def write_metrics(self, step: int, metrics: Mapping[str, Any], prefix: str = "") -> None:
    if not self.is_writer:
      return
    scalars = {f"{prefix}{k}": float(np.asarray(v)) for k, v in metrics.items()
               if np.ndim(v) == 0}
    if self._metrics_file is None:
      self._metrics_file = open(self.path / "metrics.jsonl", "a", buffering=1)
    self._metrics_file.write(json.dumps({"step": int(step), **scalars}) + "\n")
    import tensorflow as tf
    if self._summary_writer is None:
      self._summary_writer = tf.summary.create_file_writer(str(self.path / "tensorboard"))
    with self._summary_writer.as_default(step=int(step)):
      for key, value in scalars.items():
        tf.summary.scalar(key, value)
    self._summary_writer.flush()

  def close(self) -> None:
    self.latest.close()
    if self.best is not None:
      self.best.close()
    if self._metrics_file is not None:
      self._metrics_file.close()
    if self._summary_writer is not None:
      self._summary_writer.close()


# Model keys only one detector's configs have: FakeOut's TSM-ResNet, the inconsistency detector.
_DETECTOR_MODEL_KEYS = {"fakeout": "width_mult", "inconsistency": "window_seconds"}


def _kind(config: Mapping) -> Optional[str]:
  """Which detector a (saved) config trains, from the model keys only it has."""
  model = config.get("model", {}) or {}
  found = [name for name, key in _DETECTOR_MODEL_KEYS.items() if key in model]
  return found[0] if len(found) == 1 else None


def shape_mismatch(expected: Any, restored: Any) -> Optional[str]:
  """'<leaf>: checkpoint [8], config [4]' for the first array whose shape differs, else None."""
  if expected is None:
    return None
  want = {jax.tree_util.keystr(k): v for k, v in
          jax.tree_util.tree_flatten_with_path(expected)[0]}
  have = {jax.tree_util.keystr(k): v for k, v in
          jax.tree_util.tree_flatten_with_path(restored)[0]}
  missing = sorted(set(want) - set(have))
  if missing:
    return f"the checkpoint lacks {missing[0]}" + (
        f" and {len(missing) - 1} more entries" if len(missing) > 1 else "")
  for key, value in want.items():
    shape = getattr(value, "shape", None)
    if shape is not None and tuple(np.shape(have[key])) != tuple(shape):
      return (f"{key}: checkpoint {list(np.shape(have[key]))}, config {list(shape)}")
  return None


def _write_json(path: pathlib.Path, config: Mapping) -> None:
  temporary = path.with_suffix(".json.tmp")
  temporary.write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
  temporary.replace(path)


def _short(error: BaseException, limit: int = 300) -> str:
  """One line of a library error (orbax and Flax errors can carry whole arrays)."""
  text = " ".join(str(error).split())
  return text[:limit] + (" ..." if len(text) > limit else "")


_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# How orbax's TensorStore writes report them (a ValueError carrying the OS message).
_DISK_FULL_TEXTS = ("No space left on device", "Disk quota exceeded")


def _is_disk_full(error: BaseException) -> bool:
  """`error`, or an error it was raised from, is the disk's (or the quota's) being full."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
      return True
    if any(text in str(error) for text in _DISK_FULL_TEXTS):
      return True
    error = error.__cause__ or error.__context__
  return False


class _DropThreadErrors(logging.Filter):
  """orbax logs each failure of its writer threads with a traceback before re-raising it in
  the caller, where Workdir.save turns it into one line; drop the copies (unless --verbose)."""

  def filter(self, record: logging.LogRecord) -> bool:
    return "raised an exception" not in str(record.msg)


@contextlib.contextmanager
def _quiet_orbax_threads():
  if cli_errors.verbose_requested(None):
    yield
    return
  logger, dropper = logging.getLogger("absl"), _DropThreadErrors()
  logger.addFilter(dropper)
  try:
    yield
  finally:
    logger.removeFilter(dropper)


def remove_stale_checkpoint_temporaries(path: pathlib.Path, announce: bool = True) -> int:
  """Deletes orbax's ``*.orbax-checkpoint-tmp*`` folders a killed (or failed) save left
  behind; `announce` logs how many (not for a save that just failed and says so itself)."""
  import shutil
  stale = [p for p in (path / "checkpoints").glob("*/*.orbax-checkpoint-tmp*") if p.is_dir()]
  for folder in stale:
    shutil.rmtree(folder, ignore_errors=True)
  if stale and announce:
    log.info("removed %d unfinished checkpoint folder(s) of an interrupted run", len(stale))
  return len(stale)


def check_finite(step: int, loss: float, workdir: Workdir) -> None:
  """Stops the run on a NaN/inf loss, pointing at the last good checkpoint."""
  if not math.isfinite(loss):
    last = workdir.latest_step()
    raise NonFiniteLossError(
        f"loss became {loss} at step {step}; stopping. The last good checkpoint is step "
        f"{last} in {workdir.path / 'checkpoints' / 'latest'}" if last is not None else
        f"loss became {loss} at step {step}, before any checkpoint was written; stopping. Lower"
        " the learning rate or check the input data.")


def _diff_keys(a: Mapping, b: Mapping, prefix: str = "") -> set[str]:
  keys = set()
  for key in set(a) | set(b):
    name = f"{prefix}{key}"
    if isinstance(a.get(key), Mapping) and isinstance(b.get(key), Mapping):
      keys |= _diff_keys(a[key], b[key], name + ".")
    elif a.get(key) != b.get(key):
      keys.add(name)
  return keys


def run_absl_cli(main, define_flags, user_errors: Mapping[type, int] = {}) -> None:
  """Runs an absl ``main`` as a console script or as ``python -m``, under data.cli_errors.

  Flag and config errors (an unknown flag, a missing or broken config file, a misspelt
  ``--config.key`` override, which names the nearest key) print one or two lines and exit 2;
  errors of the types in `user_errors` (mapped to exit codes) print their message; anything
  else is a bug and prints its traceback. ``--verbose`` prints tracebacks of user errors too.

  absl's ``--help`` lists the flags of the module named by ``sys.argv[0]``; for a console script
  that is the script's path, not the module that defined the flags, so they are re-registered
  under it.
  """
  import sys
  from absl import app, flags
  from data import cli_errors
  define_flags()
  if "verbose" not in flags.FLAGS:
    flags.DEFINE_bool("verbose", False, "print the traceback of user errors too")
  defined = flags.FLAGS.flags_by_module_dict().get(define_flags.__module__, [])
  for flag in defined:
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  errors = {WorkdirError: cli_errors.EXIT_USAGE, NonFiniteLossError: cli_errors.EXIT_FAILED,
            **user_errors}

  def parse(argv):
    remaining = []
    code = cli_errors.handle(lambda: remaining.extend(_parse_flags(argv)),
                             verbose=cli_errors.verbose_requested(argv[1:]))
    if code:
      sys.exit(code)
    return remaining

  def run(argv):
    return cli_errors.handle(lambda: main(argv), verbose=flags.FLAGS.verbose,
                             user_errors=errors)

  app.run(run, flags_parser=parse)


def _parse_flags(argv, flag_values=None) -> list:
  """absl flag parsing with config errors as data.cli_errors.UserError (see run_absl_cli)."""
  from absl import flags
  from data import cli_errors
  flag_values = flags.FLAGS if flag_values is None else flag_values
  try:
    remaining = flag_values(argv)
  except flags.Error as e:
    raise _config_override_error(argv) or cli_errors.UserError(
        str(e), "run with --helpshort to list the flags") from None
  except (KeyError, AttributeError, TypeError, ValueError) as e:
    raise _config_override_error(argv) or cli_errors.UserError(
        f"a --config override failed: {cli_errors.shorten(str(e))}") from None
  if "config" in flag_values and flag_values["config"].present:
    try:
      flag_values.config.to_dict()
    except Exception as e:  # noqa: BLE001 - the config file's own error, shown to the user
      spec = flag_values["config"].config_filename
      if not pathlib.Path(str(spec).partition(":")[0]).is_file():
        raise cli_errors.UserError(f"--config {spec}: no such file",
                                   "give a configs/*.py file") from None
      raise cli_errors.UserError(f"--config {spec} cannot be loaded: "
                                 f"{type(e).__name__}: {cli_errors.shorten(str(e))}") from None
  return remaining


def _config_override_error(argv):
  """The UserError naming the first ``--config.KEY=`` override the config file lacks."""
  from data import cli_errors
  spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if spec is None and "--config" in argv[:-1]:
    spec = argv[argv.index("--config") + 1]
  if spec is None:
    return None
  try:
    config = load_config_file(spec).to_dict()
  except Exception:  # noqa: BLE001 - then the generic message is all we can say
    return None
  keys = set(cli_errors.config_keys(config))
  for arg in argv:
    if arg.startswith("--config."):
      key = arg[len("--config."):].split("=", 1)[0]
      if key not in keys:
        return cli_errors.unknown_config_key(key, config)
  return None


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """``path/to/config.py`` or ``path/to/config.py:arg`` -> the file's ``get_config([arg])``.

  What ``--config`` does on the command line, for notebooks and library callers.
  """
  path, _, arg = spec.partition(":")
  if not pathlib.Path(path).is_file():
    raise FileNotFoundError(f"config file {path} not found")
  module_spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()
