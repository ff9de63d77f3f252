"""AdaFace and Whisper checkpoints -> Flax variables, with explicit name maps; orbax I/O.

Accepted sources (users download them; see the README for where):

* AdaFace PyTorch Lightning ``.ckpt`` (``{'state_dict': {'model.<key>': ..., 'head.<key>': ...}}``):
  ``model.`` is stripped, ``head.*`` (the margin classifier) is ignored;
* CVLface AdaFace IR-101 (HuggingFace ``minchul/cvlface_adaface_ir101_*``): its
  ``pretrained_model/model.pt`` (keys under ``net.``) or ``model.safetensors`` (``model.net.``);
* a bare IResNet ``state_dict`` (no prefix), saved with ``torch.save``;
* Whisper, OpenAI ``.pt`` (``{'dims': {...}, 'model_state_dict': {...}}``), ``encoder.*`` kept and
  ``decoder.*`` ignored;
* Whisper, HuggingFace ``model.safetensors`` / ``pytorch_model.bin`` (``model.encoder.*`` from
  ``WhisperForConditionalGeneration``, ``encoder.*`` from ``WhisperModel``), or the folder that
  holds one of them with its ``config.json`` (sharded ``*.index.json`` folders too); decoder and
  ``proj_out`` ignored. HF names are first rewritten to OpenAI's (``_HF_TO_OPENAI``).

Every source key either maps to exactly one Flax variable by the rules below, or is on an
explicit ignore list; anything else is *unexpected*. A conversion that leaves any Flax variable
*missing*, any key unexpected or any array *mis-shaped* fails with one
:class:`CheckpointMismatchError` that lists all three. Layouts are converted explicitly: conv2d
OIHW -> HWIO, conv1d OIW -> WIO, linear [out, in] -> [in, out]; BatchNorm running statistics go
to the ``batch_stats`` collection; ``num_batches_tracked`` counters are dropped; half-precision
weights (OpenAI's ``.pt`` files are float16) become float32.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import re
from typing import Any, Optional

import flax.core
import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import safetensors.numpy

from inconsistency_jax import torch_pickle
from inconsistency_jax.models import iresnet
from inconsistency_jax.models import whisper

log = logging.getLogger(__name__)

_SHOW = 10  # keys listed per category in error messages


class CheckpointMismatchError(ValueError):
  """A checkpoint does not fit the model: every missing, unexpected and mis-shaped entry."""

  def __init__(self, source: str, model: str, missing, unexpected, misshaped, hint: str = ""):
    self.missing, self.unexpected, self.misshaped = (sorted(entries, key=_natural) for entries
                                                     in (missing, unexpected, misshaped))
    lines = [f"{source} does not fit {model}." + (f" {hint}" if hint else "")]
    for title, entries in (("missing (model variables with no checkpoint key)", self.missing),
                           ("unexpected (checkpoint keys with no model variable)",
                            self.unexpected),
                           ("mis-shaped", self.misshaped)):
      if entries:
        shown = "\n    ".join(entries[:_SHOW])
        more = f"\n    ... and {len(entries) - _SHOW} more" if len(entries) > _SHOW else ""
        lines.append(f"  {len(entries)} {title}, first:\n    {shown}{more}")
    super().__init__("\n".join(lines))


# ----------------------------------------------------------------------------- layouts

def _conv2d(weight):  # PyTorch OIHW -> Flax HWIO
  return np.transpose(weight, (2, 3, 1, 0))


def _conv1d(weight):  # PyTorch OIW -> Flax WIO
  return np.transpose(weight, (2, 1, 0))


def _linear(weight):  # PyTorch [out, in] -> Flax [in, out]
  return np.transpose(weight)


def _same(array):
  return array


_LAYOUT_NDIM = {_conv2d: 4, _conv1d: 3, _linear: 2}

# Leaf names of each kind of PyTorch module: torch leaf -> (collection, Flax leaf, layout).
# None marks a leaf that is consumed without a Flax counterpart.
_LEAVES = {
    "conv2d": {"weight": ("params", "kernel", _conv2d), "bias": ("params", "bias", _same)},
    "conv1d": {"weight": ("params", "kernel", _conv1d), "bias": ("params", "bias", _same)},
    "linear": {"weight": ("params", "kernel", _linear), "bias": ("params", "bias", _same)},
    "batchnorm": {"weight": ("params", "scale", _same), "bias": ("params", "bias", _same),
                  "running_mean": ("batch_stats", "mean", _same),
                  "running_var": ("batch_stats", "var", _same), "num_batches_tracked": None},
    "layernorm": {"weight": ("params", "scale", _same), "bias": ("params", "bias", _same)},
    "prelu": {"weight": ("params", "negative_slope", _same)},
}

# AdaFace net.Backbone module path (regex) -> Flax module path (template), module kind.
ADAFACE_RULES = (
    (r"input_layer\.0", "stem_conv", "conv2d"),
    (r"input_layer\.1", "stem_bn", "batchnorm"),
    (r"input_layer\.2", "stem_prelu", "prelu"),
    (r"body\.(\d+)\.res_layer\.0", r"body_\1/bn1", "batchnorm"),
    (r"body\.(\d+)\.res_layer\.1", r"body_\1/conv1", "conv2d"),
    (r"body\.(\d+)\.res_layer\.2", r"body_\1/bn2", "batchnorm"),
    (r"body\.(\d+)\.res_layer\.3", r"body_\1/prelu", "prelu"),
    (r"body\.(\d+)\.res_layer\.4", r"body_\1/conv2", "conv2d"),
    (r"body\.(\d+)\.res_layer\.5", r"body_\1/bn3", "batchnorm"),
    (r"body\.(\d+)\.shortcut_layer\.0", r"body_\1/shortcut_conv", "conv2d"),
    (r"body\.(\d+)\.shortcut_layer\.1", r"body_\1/shortcut_bn", "batchnorm"),
    (r"output_layer\.0", "head_bn", "batchnorm"),
    (r"output_layer\.3", "head_dense", "linear"),
    (r"output_layer\.4", "head_bn_out", "batchnorm"),
)

# openai-whisper AudioEncoder module path (without 'encoder.') -> Flax path, module kind.
WHISPER_RULES = (
    (r"conv1", "conv1", "conv1d"),
    (r"conv2", "conv2", "conv1d"),
    (r"blocks\.(\d+)\.attn\.(query|key|value|out)", r"blocks_\1/attn/\2", "linear"),
    (r"blocks\.(\d+)\.attn_ln", r"blocks_\1/attn_ln", "layernorm"),
    (r"blocks\.(\d+)\.mlp\.0", r"blocks_\1/mlp_fc1", "linear"),
    (r"blocks\.(\d+)\.mlp\.2", r"blocks_\1/mlp_fc2", "linear"),
    (r"blocks\.(\d+)\.mlp_ln", r"blocks_\1/mlp_ln", "layernorm"),
    (r"ln_post", "ln_post", "layernorm"),
)
# Whole-tensor entries (no module/leaf split).
WHISPER_TENSORS = {"positional_embedding": ("params", "positional_embedding", _same)}

# HuggingFace WhisperModel encoder names -> openai-whisper names (substring rewrites, in order).
_HF_TO_OPENAI = (
    ("encoder.embed_positions.weight", "encoder.positional_embedding"),
    ("encoder.layers.", "encoder.blocks."),
    (".self_attn.q_proj.", ".attn.query."),
    (".self_attn.k_proj.", ".attn.key."),
    (".self_attn.v_proj.", ".attn.value."),
    (".self_attn.out_proj.", ".attn.out."),
    (".self_attn_layer_norm.", ".attn_ln."),
    (".fc1.", ".mlp.0."),
    (".fc2.", ".mlp.2."),
    (".final_layer_norm.", ".mlp_ln."),
    ("encoder.layer_norm.", "encoder.ln_post."),
)

# The text decoder and the output projection of a full Whisper checkpoint.
_WHISPER_IGNORED = ("decoder.", "proj_out.")

_IGNORED = object()
_UNMAPPED = object()


def _natural(key) -> list:
  """Sort key (for a name or a tuple of names) that puts body_7 before body_10."""
  names = (key,) if isinstance(key, str) else key
  return [(0, int(part), "") if part.isdigit() else (1, 0, part)
          for name in names for part in re.split(r"(\d+)", name)]


def _map_key(key: str, rules, tensors=None):
  """Source key -> (collection, flax path tuple, layout) | _IGNORED | _UNMAPPED."""
  if tensors and key in tensors:
    collection, name, layout = tensors[key]
    return collection, (name,), layout
  module, _, leaf = key.rpartition(".")
  for pattern, template, kind in rules:
    match = re.fullmatch(pattern, module)
    if match:
      if leaf not in _LEAVES[kind]:
        return _UNMAPPED
      target = _LEAVES[kind][leaf]
      if target is None:
        return _IGNORED
      collection, name, layout = target
      return collection, tuple(match.expand(template).split("/")) + (name,), layout
  return _UNMAPPED


@dataclasses.dataclass
class Conversion:
  """Converted Flax variables plus what was done, for the CLI and logs."""
  variables: dict
  info: dict
  mapped: list  # (source key, flax path, source shape, flax shape)
  ignored: list  # source keys deliberately dropped


def convert_state_dict(state_dict: dict, target_shapes: dict, rules, *, source: str,
                       model: str, tensors=None, hint: str = "",
                       info: Optional[dict] = None) -> Conversion:
  """Maps a flat PyTorch state dict onto Flax variables of the given shapes.

  Args:
    state_dict: flat {torch key: numpy array}, prefixes already stripped.
    target_shapes: {(collection, *path): shape} of the Flax model's variables.
    rules: (regex, template, kind) module rules such as ``ADAFACE_RULES``.
    source, model: names for messages.
    tensors: whole-tensor rules {key: (collection, name, layout)}.
    hint: added to the error message (e.g. which architecture the checkpoint looks like).
  Raises:
    CheckpointMismatchError: listing every missing, unexpected and mis-shaped entry.
  """
  produced, mapped, ignored, unexpected, misshaped = {}, [], [], [], []
  attempted = set()
  for key, value in state_dict.items():
    target = _map_key(key, rules, tensors)
    if target is _IGNORED:
      ignored.append(key)
      continue
    if target is _UNMAPPED:
      unexpected.append(key)
      continue
    collection, path, layout = target
    flax_key = (collection,) + path
    name = "/".join(flax_key)
    value = np.asarray(value)
    if flax_key not in target_shapes:
      unexpected.append(f"{key} (-> {name})")
      continue
    attempted.add(flax_key)
    if layout in _LAYOUT_NDIM and value.ndim != _LAYOUT_NDIM[layout]:
      misshaped.append(f"{key}: {value.shape}, expected {_LAYOUT_NDIM[layout]} dims")
      continue
    array = np.ascontiguousarray(layout(value)).astype(np.float32)
    expected = tuple(target_shapes[flax_key])
    if array.shape != expected:
      misshaped.append(f"{key} {value.shape} -> {name} {array.shape}, model has {expected}")
      continue
    produced[flax_key] = array
    mapped.append((key, name, value.shape, array.shape))
  missing = ["/".join(key) for key in sorted(target_shapes, key=_natural)
             if key not in attempted]
  if missing or unexpected or misshaped:
    raise CheckpointMismatchError(source, model, missing, unexpected, misshaped, hint)
  variables = flax.traverse_util.unflatten_dict(produced)
  return Conversion(variables, dict(info or {}), mapped, ignored)


def variable_shapes(module, *example_args) -> dict:
  """{(collection, *path): shape} of a Flax module's variables, without running it."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *example_args))
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(shapes))
  return {key: tuple(value.shape) for key, value in flat.items()}


# ----------------------------------------------------------------------------- reading files

def read_tensors(path: str | pathlib.Path, use_torch: Optional[bool] = None) -> Any:
  """A checkpoint file as nested dicts of numpy arrays (safetensors or torch.save zip)."""
  path = pathlib.Path(path)
  if path.suffix == ".safetensors":
    return safetensors.numpy.load_file(str(path))
  return torch_pickle.load(path, use_torch=use_torch)


def _strip_prefix(state_dict: dict, prefix: str) -> dict:
  return {key[len(prefix):] if key.startswith(prefix) else key: value
          for key, value in state_dict.items()}


def _flat_arrays(tree: Any, where: str) -> dict:
  if not isinstance(tree, dict):
    raise ValueError(f"{where}: expected a dict of tensors, found {type(tree).__name__}")
  bad = [key for key, value in tree.items() if not isinstance(value, np.ndarray)]
  if bad:
    raise ValueError(f"{where}: entries that are not tensors: {bad[:_SHOW]}")
  return dict(tree)


# ----------------------------------------------------------------------------- AdaFace

def adaface_state_dict(raw: Any, where: str) -> tuple[dict, list]:
  """The IResNet weights of an AdaFace/CVLface checkpoint: (state dict, ignored keys)."""
  if isinstance(raw, dict) and "state_dict" in raw:  # PyTorch Lightning .ckpt
    raw = raw["state_dict"]
  state_dict = _flat_arrays(raw, where)
  ignored = [key for key in state_dict if key.startswith("head.")]
  state_dict = {key: value for key, value in state_dict.items() if not key.startswith("head.")}
  # Lightning: model.*; CVLface pretrained_model/model.pt: net.*; its HF model.safetensors:
  # model.net.*.
  stripped = True
  while stripped:
    stripped = False
    for prefix in ("model.", "net."):
      if state_dict and all(key.startswith(prefix) for key in state_dict):
        state_dict = _strip_prefix(state_dict, prefix)
        stripped = True
  return state_dict, ignored


def _units(state_dict: dict) -> int:
  return len({m.group(1) for key in state_dict for m in [re.match(r"body\.(\d+)\.", key)] if m})


def _arch_hint(state_dict: dict) -> str:
  units = _units(state_dict)
  for arch, per_stage in iresnet.UNITS_PER_STAGE.items():
    if sum(per_stage) == units:
      return f"The checkpoint has {units} residual units, which is {arch}."
  return f"The checkpoint has {units} residual units, which matches no IResNet depth."


def iresnet_widths(state_dict: dict) -> dict:
  """Stem/stage/embedding sizes of an IResNet state dict (AdaFace's unless reduced for tests)."""
  try:
    stem = int(state_dict["input_layer.0.weight"].shape[0])
    embedding = int(state_dict["output_layer.3.weight"].shape[0])
    widths = []
    for index in range(_units(state_dict)):
      width = int(state_dict[f"body.{index}.res_layer.4.weight"].shape[0])
      if not widths or widths[-1] != width:
        widths.append(width)
  except KeyError:
    return {}
  if len(widths) != len(iresnet.STAGE_WIDTHS):
    return {}
  return dict(stem_width=stem, stage_widths=tuple(widths), embedding_dim=embedding)


def convert_adaface(path: str | pathlib.Path, arch: str, use_torch: Optional[bool] = None,
                    raw: Any = None) -> Conversion:
  """AdaFace .ckpt / CVLface .safetensors / bare state dict -> IResNet variables of ``arch``."""
  if arch not in iresnet.UNITS_PER_STAGE:
    raise ValueError(f"--arch must be one of {sorted(iresnet.UNITS_PER_STAGE)}, got {arch!r}")
  raw = read_tensors(path, use_torch) if raw is None else raw
  state_dict, ignored = adaface_state_dict(raw, str(path))
  widths = iresnet_widths(state_dict)
  model = iresnet.IResNet(arch=arch, **widths)
  size = model.input_size
  shapes = variable_shapes(model, jnp.zeros((1, size, size, 3)))
  info = dict(kind="adaface", arch=arch, source=str(path),
              stem_width=model.stem_width, stage_widths=list(model.stage_widths),
              embedding_dim=model.embedding_dim)
  conversion = convert_state_dict(state_dict, shapes, ADAFACE_RULES, source=str(path),
                                  model=f"IResNet {arch}", hint=_arch_hint(state_dict),
                                  info=info)
  conversion.ignored = ignored + conversion.ignored
  return conversion


# ----------------------------------------------------------------------------- Whisper

def hf_to_openai_key(key: str) -> str:
  """HuggingFace Whisper key (without a leading 'model.') -> openai-whisper key."""
  for old, new in _HF_TO_OPENAI:
    key = key.replace(old, new)
  return key


def _hf_files(path: pathlib.Path) -> tuple[list, Optional[pathlib.Path]]:
  """Weight files and config.json of a HF checkpoint given as a file or a folder."""
  folder = path if path.is_dir() else path.parent
  config = folder / "config.json"
  config = config if config.is_file() else None
  if path.is_file():
    if path.name.endswith(".index.json"):
      index = json.loads(path.read_text())
      return sorted({folder / name for name in index["weight_map"].values()}), config
    return [path], config
  for name in ("model.safetensors", "pytorch_model.bin"):
    if (folder / name).is_file():
      return [folder / name], config
  for name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
    if (folder / name).is_file():
      return _hf_files(folder / name)[0], config
  raise FileNotFoundError(f"{path}: no model.safetensors, pytorch_model.bin or *.index.json")


def whisper_state_dict(path: str | pathlib.Path, use_torch: Optional[bool] = None,
                       raw: Any = None) -> tuple[dict, dict, list, str]:
  """(OpenAI-named state dict, dims found in the file, ignored keys, format name).

  ``raw`` short-cuts reading: an already loaded OpenAI ``{'dims', 'model_state_dict'}`` dict or
  a flat HF/OpenAI state dict (then ``path`` only names it in messages).
  """
  path = pathlib.Path(path)
  config_path = None
  if raw is not None:
    trees = [(path, raw)]
  else:
    files, config_path = (([path], None) if path.suffix in (".pt", ".ckpt")
                          else _hf_files(path))
    trees = [(file, read_tensors(file, use_torch)) for file in files]
  raw, dims = {}, {}
  for file, tree in trees:
    if isinstance(tree, dict) and "model_state_dict" in tree:  # openai-whisper .pt
      dims = dict(tree.get("dims") or {})
      tree = tree["model_state_dict"]
    raw.update(_flat_arrays(tree, str(file)))
  hf = any(".layers." in key or "embed_positions" in key for key in raw)
  fmt = "huggingface" if hf else "openai"
  if hf:
    raw = _strip_prefix(raw, "model.")
    raw = {hf_to_openai_key(key): value for key, value in raw.items()}
    if config_path is not None:
      config = json.loads(config_path.read_text())
      dims = dict(n_mels=config.get("num_mel_bins"), n_audio_state=config.get("d_model"),
                  n_audio_head=config.get("encoder_attention_heads"),
                  n_audio_layer=config.get("encoder_layers"),
                  n_audio_ctx=config.get("max_source_positions"))
  ignored = [key for key in raw if key.startswith(_WHISPER_IGNORED)]
  # Encoder keys lose their 'encoder.' prefix; anything else stays as it is, to be reported.
  state_dict = {key[len("encoder."):] if key.startswith("encoder.") else key: value
                for key, value in raw.items() if not key.startswith(_WHISPER_IGNORED)}
  return state_dict, dims, ignored, fmt


def whisper_dims_of(state_dict: dict, dims: dict, where: str) -> dict:
  """Encoder dims: from the file's dims/config when present, else from the tensor shapes."""
  try:
    conv1 = state_dict["conv1.weight"]
    positions = state_dict["positional_embedding"]
  except KeyError as error:
    raise ValueError(f"{where}: no Whisper encoder weights found (missing {error})") from None
  layers = len({m.group(1) for key in state_dict for m in [re.match(r"blocks\.(\d+)\.", key)]
                if m})
  width = int(conv1.shape[0])
  # Every released Whisper has 64-dim heads; used only when the file does not say.
  heads = int(dims.get("n_audio_head") or width // 64)
  return dict(n_mels=int(dims.get("n_mels") or conv1.shape[1]), width=width, num_heads=heads,
              num_layers=int(dims.get("n_audio_layer") or layers),
              context=int(dims.get("n_audio_ctx") or positions.shape[0]))


def convert_whisper(path: str | pathlib.Path, use_torch: Optional[bool] = None,
                    raw: Any = None) -> Conversion:
  """OpenAI .pt or HuggingFace checkpoint -> WhisperEncoder variables and dims."""
  state_dict, file_dims, ignored, fmt = whisper_state_dict(path, use_torch, raw)
  dims = whisper_dims_of(state_dict, file_dims, str(path))
  model = whisper.WhisperEncoder(**dims)
  shapes = variable_shapes(model, jnp.zeros((1, 2 * dims["context"], dims["n_mels"])))
  size = next((name for name, d in whisper.WHISPER_SIZES.items()
               if (d.n_mels, d.width, d.num_heads, d.num_layers) ==
               (dims["n_mels"], dims["width"], dims["num_heads"], dims["num_layers"])), "custom")
  info = dict(kind="whisper", format=fmt, size=size, source=str(path), **dims)
  conversion = convert_state_dict(state_dict, shapes, WHISPER_RULES, source=str(path),
                                  model=f"WhisperEncoder {dims}", tensors=WHISPER_TENSORS,
                                  info=info)
  conversion.ignored = ignored + conversion.ignored
  return conversion


# ----------------------------------------------------------------------------- orbax I/O

def save(directory: str | pathlib.Path, conversion: Conversion) -> pathlib.Path:
  """Writes ``directory/variables`` (orbax) and ``directory/info.json``."""
  directory = pathlib.Path(directory).absolute()
  directory.mkdir(parents=True, exist_ok=True)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(directory / "variables", conversion.variables, force=True)
  checkpointer.wait_until_finished()
  info = dict(conversion.info, mapped=len(conversion.mapped), ignored=len(conversion.ignored))
  (directory / "info.json").write_text(json.dumps(info, indent=1) + "\n")
  return directory


def restore(directory: str | pathlib.Path) -> tuple[dict, dict]:
  """(variables as numpy, info) of a directory written by :func:`save`."""
  directory = pathlib.Path(directory).absolute()
  if not (directory / "info.json").is_file():
    raise FileNotFoundError(f"{directory} holds no converted checkpoint (no info.json); create "
                            "one with python -m inconsistency_jax.convert")
  variables = ocp.StandardCheckpointer().restore(directory / "variables")
  return variables, json.loads((directory / "info.json").read_text())


def insert_pretrained(variables: dict, *, adaface: Optional[dict] = None,
                      whisper_variables: Optional[dict] = None) -> dict:
  """Detector variables with the pre-trained networks copied in.

  AdaFace goes into both face networks (mu's and gamma's ``backbone``), Whisper into alpha's
  ``whisper``; every copied entry must match the detector's shape. Returns new variables.
  """
  flat = {key: value for key, value in flax.traverse_util.flatten_dict(variables).items()}
  sources = []
  if adaface is not None:
    sources += [(("identity_encoder", "backbone"), adaface), (("visual_encoder", "backbone"),
                                                              adaface)]
  if whisper_variables is not None:
    sources.append((("audio_encoder", "whisper"), whisper_variables))
  for prefix, tree in sources:
    unexpected, misshaped = [], []
    for (collection, *path), value in flax.traverse_util.flatten_dict(tree).items():
      key = (collection,) + prefix + tuple(path)
      if key not in flat:
        unexpected.append("/".join(key))
      elif tuple(flat[key].shape) != tuple(np.shape(value)):
        misshaped.append(f"{'/'.join(key)}: detector {tuple(flat[key].shape)}, checkpoint "
                         f"{tuple(np.shape(value))}")
      else:
        flat[key] = jnp.asarray(value, flat[key].dtype)
    copied = {(c,) + prefix + tuple(p) for (c, *p) in flax.traverse_util.flatten_dict(tree)}
    missing = ["/".join(key) for key in flat if key[1:3] == prefix and key not in copied]
    if missing or unexpected or misshaped:
      raise CheckpointMismatchError(
          f"converted {'/'.join(prefix)} weights", "the detector config", missing, unexpected,
          misshaped, "Check that the model config's arch/widths or Whisper size match the "
          "converted checkpoint (its info.json).")
  return flax.traverse_util.unflatten_dict(flat)
