"""Throughput of the inconsistency detector's encoders on this machine, as JSON.

  python benchmarks/inconsistency_throughput.py                 # IR-50/IR-101, Whisper small
  python benchmarks/inconsistency_throughput.py --whisper-sizes tiny base small --iters 5

* identity encoder (mu; gamma is the same network): faces/s through the IResNet backbone plus
  the temporal transformer, windows of ``frames_per_window`` 112x112 faces, inference mode;
* audio encoder (alpha): windows/s through Whisper plus the temporal transformer, for one-second
  windows with the sliced position table (``context='window'``, the default) and for Whisper's
  full 30-s context (``context='full'``).

Weights are random (speed does not depend on them), float32, jit-compiled; compile time is
reported apart. The figures are for whatever shares the CPU at the time: the JSON records the
load average next to them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from data import constants
from data import logs
from inconsistency_jax.configs import model as model_config
from inconsistency_jax.models import detector


def _time(function, args, iters: int) -> dict:
  start = time.perf_counter()
  jax.block_until_ready(function(*args))
  compile_s = time.perf_counter() - start
  times = []
  for _ in range(iters):
    start = time.perf_counter()
    jax.block_until_ready(function(*args))
    times.append(time.perf_counter() - start)
  return dict(compile_and_first_s=round(compile_s, 2), median_step_s=float(np.median(times)),
              steps=iters)


def identity_throughput(arch: str, windows: int, iters: int) -> dict:
  config = model_config.get_config()
  config.identity.arch = arch
  model = detector.build_detector(config).identity_encoder
  size = constants.IDENTITY_FACE_SIZE
  faces = jnp.zeros((windows, config.frames_per_window, size, size, 3), jnp.uint8)
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), faces)
  timing = _time(jax.jit(model.apply), (variables, faces), iters)
  faces_per_step = windows * config.frames_per_window
  return dict(network="identity_encoder", arch=arch, windows_per_step=windows,
              faces_per_step=faces_per_step,
              faces_per_s=round(faces_per_step / timing["median_step_s"], 2), **timing)


def audio_throughput(size: str, context: str, windows: int, iters: int) -> dict:
  config = model_config.get_config()
  config.audio.whisper_size = size
  config.audio.context = context
  model = detector.build_detector(config).audio_encoder
  frames = (int(round(config.window_seconds * 100)) if context == "window"
            else 2 * model.whisper_context)
  mel = jnp.zeros((windows, frames, detector.whisper_dims(config.audio).n_mels))
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), mel)
  timing = _time(jax.jit(model.apply), (variables, mel), iters)
  return dict(network="audio_encoder", whisper_size=size, context=context,
              window_seconds=config.window_seconds, mel_frames=frames,
              windows_per_step=windows,
              windows_per_s=round(windows / timing["median_step_s"], 3), **timing)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--archs", nargs="+", default=["ir_50", "ir_101"])
  parser.add_argument("--whisper-sizes", nargs="+", default=["small"])
  parser.add_argument("--contexts", nargs="+", default=["window", "full"],
                      choices=["window", "full"])
  parser.add_argument("--face-windows", type=int, default=4,
                      help="identity windows per step (x frames_per_window faces)")
  parser.add_argument("--audio-windows", type=int, default=16,
                      help="audio windows per step for context=window (full uses 1)")
  parser.add_argument("--iters", type=int, default=3)
  parser.add_argument("--out", help="also write the JSON here")
  args = parser.parse_args(argv)
  logs.setup()
  results = []
  for arch in args.archs:
    results.append(identity_throughput(arch, args.face_windows, args.iters))
    print(json.dumps(results[-1]), file=sys.stderr)
  for size in args.whisper_sizes:
    for context in args.contexts:
      windows = args.audio_windows if context == "window" else 1
      results.append(audio_throughput(size, context, windows, args.iters))
      print(json.dumps(results[-1]), file=sys.stderr)
  report = dict(
      benchmark="inconsistency_throughput", jax=jax.__version__,
      backend=jax.default_backend(), devices=jax.device_count(), cpu_count=os.cpu_count(),
      load_average_1min=round(os.getloadavg()[0], 2), machine=platform.machine(),
      dtype="float32", command=" ".join(["python", "benchmarks/inconsistency_throughput.py"] +
                                        list(argv if argv is not None else sys.argv[1:])),
      results=results)
  text = json.dumps(report, indent=1)
  print(text)
  if args.out:
    with open(args.out, "w") as handle:
      handle.write(text + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
