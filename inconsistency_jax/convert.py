"""Converts a released AdaFace or Whisper checkpoint into Flax variables (orbax) once.

  python -m inconsistency_jax.convert --adaface adaface_ir101_webface4m.ckpt --arch ir_101 \
      --out checkpoints/adaface_ir101
  python -m inconsistency_jax.convert --whisper small.pt --out checkpoints/whisper_small
  python -m inconsistency_jax.convert --whisper path/to/hf/whisper-small --out ...

Prints every mapped key (source name and shape -> Flax path and shape) and what was ignored,
writes ``OUT/variables`` (orbax) and ``OUT/info.json`` (architecture and sizes), and exits
non-zero with the full list of missing, unexpected and mis-shaped keys when the checkpoint
does not fit. torch is not needed (see ``torch_pickle.py``); ``--torch yes`` uses
``torch.load(weights_only=True)`` instead of the built-in restricted reader.
"""
from __future__ import annotations

import argparse
import collections
import pickle
import sys
from typing import Optional, Sequence

from data import cli_errors
from data import logs
from inconsistency_jax import checkpoints
from inconsistency_jax.models import iresnet


def _parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog="python -m inconsistency_jax.convert",
      description="AdaFace (.ckpt, CVLface .safetensors) or Whisper (OpenAI .pt, HuggingFace) "
                  "checkpoint -> Flax variables saved with orbax.")
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--adaface", metavar="FILE",
                      help="AdaFace Lightning .ckpt, CVLface model.safetensors or a state dict")
  source.add_argument("--whisper", metavar="FILE",
                      help="openai-whisper .pt, or a HuggingFace model file or folder")
  parser.add_argument("--arch", choices=sorted(iresnet.UNITS_PER_STAGE),
                      help="IResNet depth of the AdaFace checkpoint (required with --adaface)")
  parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
  parser.add_argument("--torch", choices=("auto", "yes", "no"), default="auto",
                      help="read PyTorch files with torch.load(weights_only=True) (yes), with "
                           "the built-in restricted reader (no), or torch when installed (auto)")
  parser.add_argument("--quiet", action="store_true", help="print a summary, not every key")
  args = parser.parse_args(argv)
  if args.adaface and not args.arch:
    parser.error("--arch ir_18|ir_34|ir_50|ir_101 is required with --adaface")
  return args


def _report(conversion: checkpoints.Conversion, quiet: bool) -> None:
  if not quiet:
    for key, name, source_shape, flax_shape in conversion.mapped:
      print(f"  {key} {tuple(source_shape)} -> {name} {tuple(flax_shape)}")
  groups = collections.Counter(key.split(".")[0] for key in conversion.ignored)
  kinds = collections.Counter(key.rsplit(".", 1)[-1] for key in conversion.ignored)
  print(f"mapped {len(conversion.mapped)} tensors; ignored {len(conversion.ignored)} "
        f"(by prefix {dict(groups)}; by leaf {dict(kinds.most_common(3))})")


# A checkpoint that cannot be read or does not fit the architecture is an input error (exit 2).
@cli_errors.command(user_errors=(ValueError, FileNotFoundError, pickle.UnpicklingError))
def main(argv: Optional[Sequence[str]] = None) -> int:
  args = _parse(argv)
  logs.setup()
  use_torch = {"auto": None, "yes": True, "no": False}[args.torch]
  cli_errors.writable_dir(args.out, create=False)
  source = args.adaface or args.whisper
  try:
    if args.adaface:
      conversion = checkpoints.convert_adaface(args.adaface, args.arch, use_torch=use_torch)
    else:
      conversion = checkpoints.convert_whisper(args.whisper, use_torch=use_torch)
  except checkpoints.CheckpointMismatchError as error:
    # Every missing, unexpected and mis-shaped entry; the error line below is one line.
    print(str(error), file=sys.stderr)
    raise cli_errors.UserError(f"{source} does not fit the model (every problem is listed "
                               "above)") from None
  _report(conversion, args.quiet)
  out = checkpoints.save(args.out, conversion)
  info = {key: value for key, value in conversion.info.items() if key != "source"}
  print(f"wrote {out} {info}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
