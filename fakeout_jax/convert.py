"""Converts DeepMind's MMV or FakeOut's released Haiku checkpoint into Flax variables (orbax).

    python -m fakeout_jax.convert --haiku mmv_tsm_resnet_x2.pkl --config tsm_resnet_x2 --out DIR

DIR receives ``variables/`` (orbax: {'params', 'batch_stats'} of fakeout_jax.models.FakeOut)
and ``conversion.json`` (source file and its sha256, the model config, what was mapped,
dropped and initialised). Nothing is written unless every model variable found its entry.
``--config`` also takes a model config file (``FILE.py`` whose ``get_config()`` returns a
fakeout_jax/configs/model.py config), for a checkpoint of a reduced or modified model.
Exit status: 0 converted, 2 the file cannot be read or does not fit the model (data.cli_errors).
"""
import argparse
import collections
import functools
import hashlib
import json
import logging
import pathlib
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from data import cli_errors
from data import logs
from data import workdir
from fakeout_jax import checkpoints
from fakeout_jax import models
from fakeout_jax.configs import model as model_config
from fakeout_jax.models import tsm_resnet

log = logging.getLogger(__name__)

# Small dummy inputs: parameter shapes do not depend on the clip size.
_DUMMY_VIDEO = (1, 2, 32, 32, 3)
_DUMMY_AUDIO = (1, 32, 32, 1)
_DUMMY_WORDS = (1, 4)


def _parse_args(argv):
  parser = argparse.ArgumentParser(
      prog="python -m fakeout_jax.convert", description=__doc__.split("\n\n")[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--haiku", required=True, type=pathlib.Path,
                      help="original checkpoint pickle (mmv_tsm_resnet_x1.pkl, "
                           "mmv_tsm_resnet_x2.pkl or FakeOut's TSM-50x2 checkpoint)")
  parser.add_argument("--config", required=True, metavar="|".join(sorted(model_config.BACKBONES))
                      + "|FILE.py",
                      help="model config of the checkpoint: a backbone of "
                           "fakeout_jax/configs/model.py, or a config file whose get_config() "
                           "returns such a model config (a reduced or modified model)")
  parser.add_argument("--out", required=True, type=pathlib.Path, help="output directory")
  parser.add_argument("--modality", default="auto", choices=("auto",) + models.fakeout.MODALITIES,
                      help="classifier input: V&A or V; 'auto' reads it from the checkpoint's "
                           "classifier (V&A when there is none)")
  parser.add_argument("--head", default="auto", choices=("auto", "checkpoint", "fresh"),
                      help="FakeOut classifier: from the checkpoint, freshly initialised, or "
                           "'auto' (fresh only when the file has none, e.g. an MMV checkpoint)")
  parser.add_argument("--include-text", action="store_true",
                      help="keep MMV's text branch (dropped by default: FakeOut never uses it)")
  parser.add_argument("--seed", type=int, default=0, help="seed of a fresh classifier")
  parser.add_argument("--overwrite", action="store_true", help="replace DIR/variables")
  parser.add_argument("-v", "--verbose", action="store_true")
  args = parser.parse_args(argv)
  if (args.config not in model_config.BACKBONES
      and not (args.config.partition(":")[0].endswith(".py")
               and pathlib.Path(args.config.partition(":")[0]).is_file())):
    parser.error(f"--config: {args.config!r} is neither a backbone "
                 f"({', '.join(sorted(model_config.BACKBONES))}) nor an existing .py config file")
  return args


def _model_config(spec):
  """A backbone name, a config file ('FILE.py' or 'FILE.py:ARG') or a ConfigDict -> config."""
  if not isinstance(spec, str):
    return spec
  if spec in model_config.BACKBONES:
    return model_config.get_config(spec)
  try:
    config = workdir.load_config_file(spec)
  except Exception as error:  # pylint: disable=broad-except
    raise checkpoints.CheckpointError(f"config file {spec}: {type(error).__name__}: "
                                      f"{error}") from None
  missing = [key for key in ("backbone", "width_mult", "head", "blocks_per_unit")
             if key not in config]
  if missing:
    raise checkpoints.CheckpointError(f"config file {spec} does not return a model config "
                                      f"(fakeout_jax/configs/model.py): no {missing}")
  return config


def _representation_sizes(width_mult: float, audio_width_mult: float = 1.0):
  final = tsm_resnet.UNIT_CHANNELS[-1]
  return tsm_resnet.scaled(final, width_mult), tsm_resnet.scaled(final, audio_width_mult)


def _detect_modality(checkpoint, width_mult: float, audio_width_mult: float = 1.0) -> str:
  first = checkpoint["params"].get(checkpoints.CLASSIFIER_LAYERS[0], {}).get("w")
  if first is None:
    return "video_audio"
  features = np.shape(first)[0]
  video_features, audio_features = _representation_sizes(width_mult, audio_width_mult)
  if features == video_features:
    return "video"
  if features == video_features + audio_features:
    return "video_audio"
  raise checkpoints.CheckpointMismatchError(
      f"the checkpoint's classifier takes {features} features, which fits neither V "
      f"({video_features}) nor V&A ({video_features + audio_features}) for width "
      f"x{width_mult:g}: is --config right?")


def _sha256(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with path.open("rb") as f:
    for block in iter(lambda: f.read(1 << 22), b""):
      digest.update(block)
  return digest.hexdigest()


def _per_part(report):
  parts = collections.OrderedDict()
  for _, flax_name, shape in report.mapped:
    collection, part = flax_name.split("/")[:2]
    counts = parts.setdefault(part, {"params": 0, "batch_stats": 0, "values": 0})
    counts[collection] += 1
    counts["values"] += int(np.prod(shape))
  return parts


@functools.lru_cache(maxsize=4)
def _variable_shapes(config_json: str):
  """The model's variable shapes; tracing the model takes seconds, so several files converted
  in one process with one config trace it once."""
  model = models.create_model(ml_collections.ConfigDict(json.loads(config_json)))
  dummy = (jnp.zeros(_DUMMY_VIDEO), jnp.zeros(_DUMMY_AUDIO), jnp.zeros(_DUMMY_WORDS, jnp.int32))
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), *dummy, train=False))


def convert_file(haiku_path, backbone, out_dir, *, modality: str = "auto",
                 head: str = "auto", include_text: bool = False, seed: int = 0,
                 overwrite: bool = False):
  """Converts one file; returns (report, metadata). Raises checkpoints.CheckpointError.

  ``backbone``: 'tsm_resnet_x1' / 'tsm_resnet_x2', a config file path or a model ConfigDict.
  """
  haiku_path = pathlib.Path(haiku_path)
  if checkpoints.has_variables(out_dir) and not overwrite:
    raise checkpoints.CheckpointError(f"{pathlib.Path(out_dir).resolve()} already holds "
                                      "converted variables; choose another --out or pass "
                                      "--overwrite")
  checkpoint = checkpoints.load_haiku_checkpoint(haiku_path)
  config = _model_config(backbone)
  audio_width_mult = config.get("audio_width_mult", 1.0)
  config.modality = (_detect_modality(checkpoint, config.width_mult, audio_width_mult)
                     if modality == "auto" else modality)
  config.use_text = include_text
  expected = _variable_shapes(config.to_json())
  video_features, audio_features = _representation_sizes(config.width_mult, audio_width_mult)
  head_dim = video_features + (audio_features if config.modality == "video_audio" else 0)
  head_module = models.FakeOutHead(tuple(config.head.hidden), config.head.num_classes,
                                   config.head.activation)
  head_variables = jax.device_get(head_module.init(jax.random.PRNGKey(seed),
                                                   jnp.zeros((1, head_dim)))["params"])
  variables, report = checkpoints.convert(checkpoint, expected, head=head,
                                          head_variables=head_variables)
  metadata = {
      "source": str(haiku_path.resolve()),
      "source_sha256": _sha256(haiku_path),
      "model_config": config.to_dict(),
      "summary": report.summary(),
      "per_part": _per_part(report),
  }
  checkpoints.save_variables(out_dir, variables, metadata, overwrite=overwrite)
  return report, metadata


def _print_summary(haiku_path, out_dir, report, metadata):
  summary, config = metadata["summary"], metadata["model_config"]
  head = "fresh (seeded)" if summary["initialised"] else "from the checkpoint"
  lines = [
      f"Converted {haiku_path} -> {pathlib.Path(out_dir).resolve()}",
      f"  model: {config['backbone']} (width x{config['width_mult']}), modality "
      f"{config['modality']}, classifier {head}, text branch "
      f"{'kept' if config['use_text'] else 'dropped'}",
      f"  mapped {summary['mapped_entries']} entries ({summary['mapped_values']:,} values): "
      f"{summary['mapped_params']} params, {summary['mapped_batch_stats']} batch_stats",
  ]
  for part, counts in metadata["per_part"].items():
    lines.append(f"    {part:16s} {counts['params']:4d} params {counts['batch_stats']:4d} "
                 f"batch_stats {counts['values']:12,d} values")
  if summary["dropped_entries"]:
    lines.append(f"  dropped {summary['dropped_entries']} entries "
                 f"({summary['dropped_values']:,} values), unused by the model:")
    lines += [f"    {module}" for module in summary["dropped_modules"]]
  if summary["initialised"]:
    lines.append(f"  initialised {len(summary['initialised'])} classifier entries "
                 "(not in the checkpoint)")
  if summary["cast"]:
    lines.append(f"  cast to float32: {len(summary['cast'])} entries")
  print("\n".join(lines))


@cli_errors.command(user_errors=(checkpoints.CheckpointError,))
def main(argv=None) -> int:
  args = _parse_args(argv)
  logs.setup(args.verbose)
  cli_errors.writable_dir(args.out, create=False)
  try:
    report, metadata = convert_file(
        args.haiku, args.config, args.out, modality=args.modality, head=args.head,
        include_text=args.include_text, seed=args.seed, overwrite=args.overwrite)
  except checkpoints.CheckpointMismatchError as error:
    # Every problem, one per line (the error line below is a single line by convention).
    print(str(error), file=sys.stderr)
    raise cli_errors.UserError(f"{args.haiku} does not fit --config {args.config} (every "
                               "problem is listed above)") from None
  _print_summary(args.haiku, args.out, report, metadata)
  return 0


if __name__ == "__main__":
  sys.exit(main())
