"""Converts DeepMind's MMV or FakeOut's released Haiku checkpoint into Flax variables (orbax).

    python -m fakeout_jax.convert --haiku mmv_tsm_resnet_x2.pkl --config tsm_resnet_x2 --out DIR

DIR receives ``variables/`` (orbax: {'params', 'batch_stats'} of fakeout_jax.models.FakeOut)
and ``conversion.json`` (source file and its sha256, the model config, what was mapped,
dropped and initialised). Nothing is written unless every model variable found its entry.
Exit status: 0 converted, 1 the checkpoint does not fit the model, 2 the file cannot be read.
"""
import argparse
import collections
import hashlib
import logging
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

from data import logs
from fakeout_jax import checkpoints
from fakeout_jax import models
from fakeout_jax.configs import model as model_config

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
  parser.add_argument("--config", required=True, choices=sorted(model_config.BACKBONES),
                      help="model config (fakeout_jax/configs/model.py) of the checkpoint")
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
  return parser.parse_args(argv)


def _detect_modality(checkpoint, width_mult: float) -> str:
  first = checkpoint["params"].get(checkpoints.CLASSIFIER_LAYERS[0], {}).get("w")
  if first is None:
    return "video_audio"
  features = np.shape(first)[0]
  video_features = int(2048 * width_mult)
  if features == video_features:
    return "video"
  if features == video_features + 2048:
    return "video_audio"
  raise checkpoints.CheckpointMismatchError(
      f"the checkpoint's classifier takes {features} features, which fits neither V "
      f"({video_features}) nor V&A ({video_features + 2048}) for width x{width_mult:g}: is "
      "--config right?")


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


def convert_file(haiku_path, backbone: str, out_dir, *, modality: str = "auto",
                 head: str = "auto", include_text: bool = False, seed: int = 0,
                 overwrite: bool = False):
  """Converts one file; returns (report, metadata). Raises checkpoints.CheckpointError."""
  haiku_path = pathlib.Path(haiku_path)
  if checkpoints.has_variables(out_dir) and not overwrite:
    raise checkpoints.CheckpointError(f"{pathlib.Path(out_dir).resolve()} already holds "
                                      "converted variables; choose another --out or pass "
                                      "--overwrite")
  checkpoint = checkpoints.load_haiku_checkpoint(haiku_path)
  config = model_config.get_config(backbone)
  config.modality = (_detect_modality(checkpoint, config.width_mult) if modality == "auto"
                     else modality)
  config.use_text = include_text
  model = models.create_model(config)
  dummy = (jnp.zeros(_DUMMY_VIDEO), jnp.zeros(_DUMMY_AUDIO), jnp.zeros(_DUMMY_WORDS, jnp.int32))
  expected = jax.eval_shape(
      lambda: model.init(jax.random.PRNGKey(0), *dummy, train=False))
  head_dim = int(2048 * config.width_mult) + (2048 if config.modality == "video_audio" else 0)
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


def main(argv=None) -> int:
  args = _parse_args(argv)
  logs.setup(args.verbose)
  try:
    report, metadata = convert_file(
        args.haiku, args.config, args.out, modality=args.modality, head=args.head,
        include_text=args.include_text, seed=args.seed, overwrite=args.overwrite)
  except checkpoints.CheckpointMismatchError as error:
    print(f"error: {args.haiku}: {error}", file=sys.stderr)
    return 1
  except checkpoints.CheckpointError as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  _print_summary(args.haiku, args.out, report, metadata)
  return 0


if __name__ == "__main__":
  sys.exit(main())
