"""DeepMind's MMV and FakeOut's Haiku checkpoints -> Flax variables of fakeout_jax.models.FakeOut.

A released checkpoint is a pickle of ``{'params': {module: {name: array}}, 'state': {...}}``
(see safe_pickle.py for how it is read without running code). Every Flax variable of the model
has exactly one Haiku entry, given by the explicit rules of :func:`haiku_key`; conversion
reports every missing, unexpected and mis-shaped entry at once. The text branch of MMV (word
embeddings, text heads; FakeOut never uses it) is reported and dropped unless the model was
built with ``use_text``. A checkpoint without FakeOut's classifier (an MMV pre-training file)
gets a freshly initialised head when asked (``head='fresh'`` or ``'auto'``).

Converted variables are saved and restored with orbax (:func:`save_variables`,
:func:`restore_variables`).
"""
import dataclasses
import json
import logging
import pathlib
import pickle
import re
import struct
from typing import Any, Dict, List, Optional, Tuple

import flax
import jax
import numpy as np

from fakeout_jax import safe_pickle
from fakeout_jax.safe_pickle import CheckpointError
from fakeout_jax.safe_pickle import UnsafePickleError

log = logging.getLogger(__name__)


class CheckpointMismatchError(CheckpointError):
  """The checkpoint was read but does not fit the model; the message lists every problem."""


__all__ = ["CheckpointError", "CheckpointMismatchError", "UnsafePickleError", "ConversionReport",
           "load_haiku_checkpoint", "haiku_key", "convert", "save_variables",
           "restore_variables", "read_metadata"]

_ROOT = "text_audio_video"
_VIDEO = f"{_ROOT}/visual_module/~/TSMResNetV2"
_AUDIO = f"{_ROOT}/audio_module/~/res_net_v2"
_HEADS = f"{_ROOT}/~_get_pair_embedding_heads"
_BN = "__cross_replica_batch_norm"
CLASSIFIER_LAYERS = ("first_mlp_layer", "second_mlp_layer", "third_mlp_layer")
# Haiku modules of MMV's text branch, dropped unless the model has use_text.
TEXT_MODULES = (f"{_ROOT}/text_module/", f"{_HEADS}/txt_embd/", f"{_HEADS}/txt2audio_embd/")

# Flax module path -> Haiku module path. One rule per kind of module, applied to the whole
# '/'-joined Flax path; '{bn}' stands for the numbered batch-norm name (norm_0 -> '__cross_
# replica_batch_norm', norm_1 -> '..._1', ...).
_MODULE_RULES: List[Tuple[str, str]] = [
    (r"video_encoder/stem_conv", f"{_VIDEO}/tsm_resnet_stem"),
    (r"video_encoder/unit_(\d+)/block_(\d+)/(conv_\d|shortcut_conv)",
     rf"{_VIDEO}/tsm_resnet_unit_\1/block_\2/\3"),
    (r"video_encoder/unit_(\d+)/block_(\d+)/norm_(\d)",
     rf"{_VIDEO}/tsm_resnet_unit_\1/block_\2/{{bn\3}}"),
    (r"video_encoder/final_norm", f"{_VIDEO}/{_BN}"),
    (r"audio_encoder/stem_conv", f"{_AUDIO}/~/initial_conv"),
    (r"audio_encoder/unit_(\d+)/block_(\d+)/(conv_\d|shortcut_conv)",
     rf"{_AUDIO}/~/block_group_\1/block_\2/~/\3"),
    (r"audio_encoder/unit_(\d+)/block_(\d+)/norm_(\d)",
     rf"{_AUDIO}/~/block_group_\1/block_\2/{{bn\3}}"),
    (r"audio_encoder/final_norm", f"{_AUDIO}/{_BN}"),
    (r"embedding_heads/video_to_audio/inner_dense",
     f"{_HEADS}/vid2audio_embd/final_projection_inner"),
    (r"embedding_heads/video_to_audio/inner_norm", f"{_HEADS}/vid2audio_embd/{_BN}"),
    (r"embedding_heads/video_to_audio/dense", f"{_HEADS}/vid2audio_embd/final_projection"),
    (r"embedding_heads/video_to_audio/out_norm", f"{_HEADS}/vid2audio_embd/{_BN}_1"),
    (r"embedding_heads/video_to_text/dense", f"{_HEADS}/vis_embd/final_projection"),
    (r"embedding_heads/video_to_text/out_norm", f"{_HEADS}/vis_embd/{_BN}"),
    (r"embedding_heads/audio_to_video", f"{_HEADS}/audio_embd/final_projection"),
    (r"embedding_heads/audio_to_text", f"{_HEADS}/audio2txt_embd/final_projection"),
    (r"embedding_heads/text_to_video", f"{_HEADS}/txt_embd/final_projection"),
    (r"embedding_heads/text_to_audio", f"{_HEADS}/txt2audio_embd/final_projection"),
    (r"text_encoder/embed", f"{_ROOT}/text_module/~/embed"),
    (r"text_encoder/conv", f"{_ROOT}/text_module/~/text_conv1"),
    (r"classifier/dense_0", CLASSIFIER_LAYERS[0]),
    (r"classifier/dense_1", CLASSIFIER_LAYERS[1]),
    (r"classifier/dense_2", CLASSIFIER_LAYERS[2]),
]
_COMPILED_RULES = [(re.compile(pattern + "$"), template) for pattern, template in _MODULE_RULES]
# Flax parameter name -> Haiku parameter name (norm biases are Haiku 'offset').
_PARAM_NAMES = {"kernel": "w", "bias": "b", "scale": "scale", "embedding": "embeddings"}
_NORM_PARAM_NAMES = {"scale": "scale", "bias": "offset"}
_EMA_NAMES = ("mean_ema", "var_ema")


def _haiku_module(flax_module: str) -> Optional[str]:
  for pattern, template in _COMPILED_RULES:
    match = pattern.match(flax_module)
    if match:
      haiku = match.expand(template)
      return re.sub(r"\{bn(\d)\}",
                    lambda m: _BN + ("_" + m.group(1) if m.group(1) != "0" else ""), haiku)
  return None


def haiku_key(collection: str, flax_path: Tuple[str, ...]) -> Optional[Tuple[str, str, str]]:
  """The Haiku entry of one Flax variable: ('params'|'state', module path, name), or None.

  ``flax_path`` is the variable's path inside its collection ('params' or 'batch_stats'), e.g.
  ('video_encoder', 'unit_0', 'block_0', 'norm_1', 'mean_ema', 'hidden') ->
  ('state', 'text_audio_video/visual_module/~/TSMResNetV2/tsm_resnet_unit_0/block_0/
  __cross_replica_batch_norm_1/~/mean_ema', 'hidden').
  """
  if collection == "params":
    module = _haiku_module("/".join(flax_path[:-1]))
    if module is None:
      return None
    names = _NORM_PARAM_NAMES if module.rsplit("/", 1)[-1].startswith(_BN) else _PARAM_NAMES
    name = names.get(flax_path[-1])
    return None if name is None else ("params", module, name)
  if collection == "batch_stats":
    if len(flax_path) < 3 or flax_path[-2] not in _EMA_NAMES:
      return None
    module = _haiku_module("/".join(flax_path[:-2]))
    if module is None:
      return None
    return "state", f"{module}/~/{flax_path[-2]}", flax_path[-1]
  return None


# ------------------------------------------------------------------------------ reading


def load_haiku_checkpoint(path) -> Dict[str, Dict[str, Dict[str, np.ndarray]]]:
  """Reads an original MMV/FakeOut pickle into {'params': ..., 'state': ...} of numpy arrays.

  Raises CheckpointError (UnsafePickleError for a refused class) with the file name and the
  reason: not found, a directory, not a pickle, truncated, or not the expected layout.
  """
  path = pathlib.Path(path)
  if path.is_dir():
    raise CheckpointError(f"{path} is a directory, not a Haiku checkpoint pickle (converted "
                          "Flax variables are read with fakeout_jax.checkpoints."
                          "restore_variables)")
  if not path.is_file():
    raise CheckpointError(f"{path}: no such file (download the checkpoint first; see the README "
                          "for where DeepMind and the FakeOut authors publish theirs)")
  data = path.read_bytes()
  looks_like_pickle = data[:1] == b"\x80" and len(data) > 1 and 2 <= data[1] <= 5
  try:
    checkpoint = safe_pickle.loads(data)
  except UnsafePickleError as error:
    raise UnsafePickleError(f"{path}: {error}") from None
  except CheckpointError as error:
    raise CheckpointError(f"{path}: {error}") from None
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
          AttributeError, struct.error, UnicodeDecodeError, MemoryError) as error:
    if looks_like_pickle:
      raise CheckpointError(
          f"{path} is truncated or corrupt ({len(data)} bytes; the pickle stops with "
          f"{type(error).__name__}: {error}). Download it again.") from None
    raise CheckpointError(
        f"{path} is not a pickle (it starts with {data[:8]!r}); expected DeepMind's "
        "mmv_tsm_resnet_x1.pkl / x2.pkl or FakeOut's released checkpoint") from None
  if not isinstance(checkpoint, dict) or "params" not in checkpoint:
    found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
    raise CheckpointError(f"{path}: expected a dict with 'params' and 'state' (the layout of "
                          f"the MMV/FakeOut checkpoints), found {found}")
  checkpoint.setdefault("state", {})
  for tree in ("params", "state"):
    if not isinstance(checkpoint[tree], dict) or not all(
        isinstance(v, dict) for v in checkpoint[tree].values()):
      raise CheckpointError(f"{path}: checkpoint['{tree}'] must map module paths to dicts of "
                            "arrays")
  return checkpoint


# ------------------------------------------------------------------------------ conversion


@dataclasses.dataclass
class ConversionReport:
  """What a conversion did; ``ok`` is False when anything required is wrong."""
  mapped: List[Tuple[str, str, Tuple[int, ...]]] = dataclasses.field(default_factory=list)
  missing: List[Tuple[str, str, Tuple[int, ...]]] = dataclasses.field(default_factory=list)
  unexpected: List[Tuple[str, Tuple[int, ...]]] = dataclasses.field(default_factory=list)
  mis_shaped: List[Tuple[str, str, Tuple[int, ...], Tuple[int, ...]]] = dataclasses.field(
      default_factory=list)
  dropped: List[Tuple[str, Tuple[int, ...]]] = dataclasses.field(default_factory=list)
  initialised: List[str] = dataclasses.field(default_factory=list)
  cast: List[Tuple[str, str, str]] = dataclasses.field(default_factory=list)
  hints: List[str] = dataclasses.field(default_factory=list)

  @property
  def ok(self) -> bool:
    return not (self.missing or self.unexpected or self.mis_shaped)

  def describe_problems(self) -> str:
    lines = []
    if self.mis_shaped:
      lines.append(f"{len(self.mis_shaped)} entries with the wrong shape (checkpoint -> model):")
      lines += [f"  {hk} -> {fx}: checkpoint {list(got)}, model expects {list(want)}"
                for hk, fx, got, want in self.mis_shaped]
    if self.missing:
      lines.append(f"{len(self.missing)} model entries missing from the checkpoint:")
      lines += [f"  {hk} (for {fx}, shape {list(shape)})" for hk, fx, shape in self.missing]
    if self.unexpected:
      lines.append(f"{len(self.unexpected)} checkpoint entries the model has no place for:")
      lines += [f"  {hk} {list(shape)}" for hk, shape in self.unexpected]
    lines += [f"hint: {hint}" for hint in self.hints]
    return "\n".join(lines)

  def summary(self) -> Dict[str, Any]:
    def count(entries):
      return int(sum(np.prod(e[-1]) for e in entries))
    return {
        "mapped_entries": len(self.mapped), "mapped_values": count(self.mapped),
        "mapped_params": sum(1 for _, fx, _ in self.mapped if fx.startswith("params/")),
        "mapped_batch_stats": sum(1 for _, fx, _ in self.mapped if fx.startswith("batch_stats/")),
        "dropped_entries": len(self.dropped), "dropped_values": count(self.dropped),
        "dropped_modules": sorted({hk.rsplit(":", 1)[0] for hk, _ in self.dropped}),
        "initialised": list(self.initialised),
        "cast": [f"{k}: {a} -> {b}" for k, a, b in self.cast],
        "missing": len(self.missing), "unexpected": len(self.unexpected),
        "mis_shaped": len(self.mis_shaped),
    }


def _flatten(tree, prefix=()):
  for key, value in tree.items():
    if isinstance(value, dict) or hasattr(value, "items"):
      yield from _flatten(value, prefix + (key,))
    else:
      yield prefix + (key,), value


def _fits(haiku_shape, flax_shape) -> bool:
  """Same shape, or Haiku's norm shape [1, .., 1, C] for Flax's [C]."""
  haiku_shape, flax_shape = tuple(haiku_shape), tuple(flax_shape)
  if haiku_shape == flax_shape:
    return True
  extra = len(haiku_shape) - len(flax_shape)
  return extra > 0 and all(d == 1 for d in haiku_shape[:extra]) and (
      haiku_shape[extra:] == flax_shape)


def _width_hint(checkpoint, expected) -> Optional[str]:
  stem = checkpoint["params"].get(f"{_VIDEO}/tsm_resnet_stem", {}).get("w")
  want = expected.get(("params", "video_encoder", "stem_conv", "kernel"))
  if stem is None or want is None or np.shape(stem)[-1] == want.shape[-1]:
    return None
  width = np.shape(stem)[-1] // 64
  return (f"the checkpoint's video backbone has width x{width} ({np.shape(stem)[-1]} stem "
          f"channels) but the model is x{want.shape[-1] // 64}: use --config "
          f"tsm_resnet_x{width}")


def _classifier_hint(checkpoint, expected) -> Optional[str]:
  first = checkpoint["params"].get(CLASSIFIER_LAYERS[0], {}).get("w")
  want = expected.get(("params", "classifier", "dense_0", "kernel"))
  if first is None or want is None or np.shape(first)[0] == want.shape[0]:
    return None
  return (f"the checkpoint's classifier takes {np.shape(first)[0]} features and the model's "
          f"{want.shape[0]}: V&A takes vid_repr + aud_repr (4096 for x1, 6144 for x2), V only "
          "vid_repr (2048 for x1, 4096 for x2); set the model's modality accordingly")


def convert(checkpoint: Dict[str, Any], expected_variables: Any, *, head: str = "auto",
            head_variables: Optional[Dict[str, Any]] = None,
            strict: bool = True) -> Tuple[Dict[str, Any], ConversionReport]:
  """Maps a Haiku checkpoint onto the model's Flax variables.

  Args:
    checkpoint: {'params': ..., 'state': ...} from :func:`load_haiku_checkpoint`.
    expected_variables: the model's variables or their shapes (e.g. ``jax.eval_shape`` of
      ``model.init``): {'params': ..., 'batch_stats': ...}. Decides what is mapped: text
      entries only if the model has a text_encoder.
    head: 'checkpoint' (FakeOut checkpoint: the classifier must be in it), 'fresh' (ignore any
      classifier in the file and use ``head_variables``) or 'auto' (from the file if it has
      one, else fresh).
    head_variables: initial classifier params ({'dense_0': ..., ...}) for a fresh head.
    strict: raise CheckpointError listing every problem when anything does not fit.

  Returns:
    (variables {'params', 'batch_stats'} of numpy arrays, report).
  """
  if head not in ("auto", "checkpoint", "fresh"):
    raise ValueError(f"head must be 'auto', 'checkpoint' or 'fresh', got {head!r}")
  expected_variables = flax.core.unfreeze(expected_variables)
  expected = {(collection,) + path: leaf for collection in ("params", "batch_stats")
              for path, leaf in _flatten(expected_variables.get(collection, {}))}
  report = ConversionReport()
  params = checkpoint["params"]
  has_classifier = any(name in params for name in CLASSIFIER_LAYERS)
  fresh_head = head == "fresh" or (head == "auto" and not has_classifier)
  model_has_text = any(key[1] == "text_encoder" for key in expected)

  flat = {}
  consumed = set()
  for key, leaf in expected.items():
    haiku = haiku_key(key[0], key[1:])
    flax_name = "/".join(key)
    if haiku is None:
      raise CheckpointError(f"no Haiku name rule for the model variable {flax_name}: the model "
                            "and fakeout_jax.checkpoints._MODULE_RULES disagree")
    tree, module, name = haiku
    if fresh_head and key[1] == "classifier":
      value = head_variables
      for part in key[2:]:
        value = None if value is None else value.get(part)
      if value is None:
        raise ValueError("a fresh classifier head needs head_variables (FakeOutHead params)")
      flat[key] = np.asarray(value)
      report.initialised.append(flax_name)
      continue
    entry = checkpoint[tree].get(module, {})
    if name not in entry:
      report.missing.append((f"{tree}:{module}:{name}", flax_name, tuple(leaf.shape)))
      continue
    consumed.add(haiku)
    value = np.asarray(entry[name])
    if not _fits(value.shape, leaf.shape):
      report.mis_shaped.append((f"{tree}:{module}:{name}", flax_name, value.shape,
                                tuple(leaf.shape)))
      continue
    want_dtype = np.dtype(leaf.dtype)
    if value.dtype != want_dtype:
      if value.dtype.kind != want_dtype.kind and not (
          value.dtype.kind in "fc" and want_dtype.kind == "f"):
        report.mis_shaped.append((f"{tree}:{module}:{name} ({value.dtype})", flax_name,
                                  value.shape, tuple(leaf.shape)))
        continue
      report.cast.append((flax_name, str(value.dtype), str(want_dtype)))
    flat[key] = value.reshape(leaf.shape).astype(want_dtype)
    report.mapped.append((f"{tree}:{module}:{name}", flax_name, tuple(leaf.shape)))

  for tree in ("params", "state"):
    for module, entries in checkpoint[tree].items():
      for name, value in entries.items():
        if (tree, module, name) in consumed:
          continue
        shape = tuple(np.shape(value))
        if not model_has_text and any(module.startswith(p) for p in TEXT_MODULES):
          report.dropped.append((f"{tree}:{module}:{name}", shape))
        elif fresh_head and module in CLASSIFIER_LAYERS:
          report.dropped.append((f"{tree}:{module}:{name}", shape))
        else:
          report.unexpected.append((f"{tree}:{module}:{name}", shape))

  for hint in (_width_hint(checkpoint, expected), _classifier_hint(checkpoint, expected)):
    if hint and (report.mis_shaped or report.missing):
      report.hints.append(hint)
  if report.missing and all(k[1].startswith("params/classifier") for k in report.missing):
    report.hints.append("the checkpoint has no FakeOut classifier (an MMV pre-training file?): "
                        "convert with head='fresh' / --head fresh to start a new one")
  if strict and not report.ok:
    raise CheckpointMismatchError("the checkpoint does not fit the model:\n" +
                                  report.describe_problems())

  variables = {"params": {}, "batch_stats": {}}
  for key, value in flat.items():
    node = variables
    for part in key[:-1]:
      node = node.setdefault(part, {})
    node[key[-1]] = value
  return variables, report


# ------------------------------------------------------------------------------ orbax


_VARIABLES_DIR = "variables"
_METADATA_FILE = "conversion.json"


def has_variables(directory) -> bool:
  """Whether ``directory`` already holds variables saved by :func:`save_variables`."""
  return (pathlib.Path(directory) / _VARIABLES_DIR).exists()


def save_variables(directory, variables: Dict[str, Any],
                   metadata: Optional[Dict[str, Any]] = None,
                   overwrite: bool = False) -> pathlib.Path:
  """Saves Flax variables with orbax under DIR/variables and metadata in DIR/conversion.json."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  directory = pathlib.Path(directory).resolve()
  target = directory / _VARIABLES_DIR
  if target.exists() and not overwrite:
    raise CheckpointError(f"{target} already exists; choose another --out or pass --overwrite")
  directory.mkdir(parents=True, exist_ok=True)
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(target, jax.tree_util.tree_map(np.asarray, variables), force=overwrite)
    checkpointer.wait_until_finished()
  (directory / _METADATA_FILE).write_text(json.dumps(metadata or {}, indent=2, sort_keys=True))
  return directory


def restore_variables(directory, target: Any = None) -> Dict[str, Any]:
  """Restores variables saved by :func:`save_variables` (optionally onto ``target``'s shapes)."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  path = pathlib.Path(directory).resolve() / _VARIABLES_DIR
  if not path.is_dir():
    raise CheckpointError(f"{path} not found: expected a directory written by "
                          "`python -m fakeout_jax.convert` (it holds variables/ and "
                          f"{_METADATA_FILE})")
  with ocp.StandardCheckpointer() as checkpointer:
    if target is None:
      return checkpointer.restore(path)
    abstract = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), np.dtype(x.dtype)), target)
    return checkpointer.restore(path, abstract)


def read_metadata(directory) -> Dict[str, Any]:
  path = pathlib.Path(directory) / _METADATA_FILE
  return json.loads(path.read_text()) if path.is_file() else {}
