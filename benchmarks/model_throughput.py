"""Throughput of the Flax FakeOut against the original Haiku network, same run, same shapes.

  python benchmarks/model_throughput.py                        # small clips, x1 and x2
  python benchmarks/model_throughput.py --sizes full --backbones tsm_resnet_x1 --batch 1
  python benchmarks/model_throughput.py --sizes small full --repeats 5 --out result.json

For each backbone and clip size: evaluation clips/s (jit, is_training=False) and training-step
clips/s (pmap over the local devices: forward in training mode with cross-replica batch norm,
backward, Adam update of every parameter, new batch statistics) of fakeout_jax.models.FakeOut
and of the Haiku network of tests/mmv_haiku_reference.py, which has the original's parameter
and state trees (the original forward, text branch included; the Flax model is built with
use_text so both do the same work). The weights are one random original-format checkpoint,
converted by fakeout_jax.checkpoints for the Flax side. The timed steps of the two alternate,
so a change in machine load affects both alike; compile time and XLA's cost estimate of each
compiled step (flops, bytes accessed: load-independent) are reported apart. Prints one JSON
object: per run the wall-clock step times, clips/s from the best step (the least disturbed by
other load; timeit's convention) and from the median, clips per CPU-second (the process's CPU
time per step: the work done, far steadier than wall time when other jobs share the cores),
and the ratios Flax / Haiku of all three (target >= 1.0).

``--compare dtype`` measures instead the Flax FakeOut in float32 against the same network with
``model.dtype='bfloat16'`` (parameters, optimiser state and batch statistics float32), timed
alternately in one run, with the ratio bfloat16 / float32; ``machine.backend`` labels where it
ran (on a CPU, bfloat16 is emulated and usually slower: the figure a TPU/GPU user cares about
needs that accelerator).

Sizes: 'small' = 4 frames of 64x64 with [48, 80] audio; 'full' = the released 32 frames of
224x224 with [183, 80] audio. --frames/--image-size/--audio-frames override 'small'.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from fakeout_jax import checkpoints  # noqa: E402
from fakeout_jax import models  # noqa: E402
from fakeout_jax.configs import model as model_config  # noqa: E402
from tests import mmv_haiku_reference as reference  # noqa: E402

FULL = {"frames": 32, "image_size": 224, "audio_frames": 183}
SMALL = {"frames": 4, "image_size": 64, "audio_frames": 48}
LEARNING_RATE = 1e-5  # FakeOut's fine-tuning rate; irrelevant to speed.


def _parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--backbones", nargs="+", default=["tsm_resnet_x1", "tsm_resnet_x2"],
                      choices=sorted(model_config.BACKBONES))
  parser.add_argument("--sizes", nargs="+", default=["small"], choices=["small", "full"])
  parser.add_argument("--batch", type=int, default=2, help="clips per device")
  parser.add_argument("--frames", type=int, default=SMALL["frames"])
  parser.add_argument("--image-size", type=int, default=SMALL["image_size"])
  parser.add_argument("--audio-frames", type=int, default=SMALL["audio_frames"])
  parser.add_argument("--repeats", type=int, default=3, help="timed steps per network")
  parser.add_argument("--modes", nargs="+", default=["eval", "train"], choices=["eval", "train"])
  parser.add_argument("--out", type=pathlib.Path, help="also write the JSON here")
  parser.add_argument("--compare", choices=["haiku", "dtype"], default="haiku",
                      help="haiku: Flax vs the original Haiku network; dtype: Flax float32 vs "
                           "bfloat16")
  return parser.parse_args(argv)


def _inputs(leading, batch, frames, image_size, audio_frames, seed=0):
  rng = np.random.default_rng(seed)
  shape = leading + (batch,)
  return (rng.uniform(0, 1, shape + (frames, image_size, image_size, 3)).astype(np.float32),
          rng.standard_normal(shape + (audio_frames, 80, 1)).astype(np.float32),
          rng.integers(0, reference.VOCABULARY, shape + (16,)).astype(np.int32),
          rng.integers(0, 2, shape).astype(np.int32))


class _Step:
  """One network's compiled step; ``carried`` leading arguments are replaced by its outputs."""

  def __init__(self, function, arguments, carried=0):
    self.function, self.arguments, self.carried = function, list(arguments), carried
    self.compiled = None

  def compile(self):
    """Ahead-of-time compilation; returns XLA's cost estimate of the step."""
    self.compiled = self.function.lower(*self.arguments).compile()
    cost = self.compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return {key: float(cost[key]) for key in ("flops", "bytes accessed") if key in cost}

  def __call__(self):
    outputs = self.compiled(*self.arguments)
    if self.carried:
      self.arguments[:self.carried] = outputs[:self.carried]
      return outputs[self.carried:]
    return outputs


def _eval_steps(backbone, checkpoint, variables, flax_model, inputs):
  video, audio, words, _ = inputs
  haiku = reference.transformed(model_config.BACKBONES[backbone], axis_name=None)
  haiku_apply = jax.jit(lambda p, s, v, a, w: haiku.apply(p, s, None, v, a, w, False)[0])
  flax_apply = jax.jit(lambda variables, v, a, w: flax_model.apply(variables, v, a, w,
                                                                   train=False))
  params, state = jax.device_put((checkpoint["params"], checkpoint["state"]))
  return {"haiku": _Step(haiku_apply, (params, state, video, audio, words)),
          "flax": _Step(flax_apply, (jax.device_put(variables), video, audio, words))}


def _train_steps(backbone, checkpoint, variables, flax_model, inputs):
  """pmap'd training steps whose parameters, statistics and optimiser state carry over."""
  optimizer = optax.adam(LEARNING_RATE)
  haiku = reference.transformed(model_config.BACKBONES[backbone])
  axis = reference.CROSS_REPLICA_AXIS
  devices = jax.local_devices()

  def haiku_step(params, state, opt_state, v, a, w, y):
    def loss_fn(params):
      out, new_state = haiku.apply(params, state, None, v, a, w, True)
      return optax.softmax_cross_entropy_with_integer_labels(out["logits"], y).mean(), new_state
    (loss, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grads = jax.lax.pmean(grads, axis)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_state, opt_state, loss

  def replicate(tree):
    return jax.device_put_replicated(tree, devices)

  haiku_state = (replicate(checkpoint["params"]), replicate(checkpoint["state"]),
                 replicate(optimizer.init(checkpoint["params"])))
  return {
      "haiku": _Step(jax.pmap(haiku_step, axis_name=axis, donate_argnums=(0, 1, 2)),
                     haiku_state + tuple(inputs), carried=3),
      "flax": _flax_train_step(flax_model, variables, inputs),
  }


def _flax_train_step(flax_model, variables, inputs):
  """The Flax network's pmap'd training step (Adam), its state carried over between calls."""
  optimizer = optax.adam(LEARNING_RATE)

  def flax_step(params, batch_stats, opt_state, v, a, w, y):
    def loss_fn(params):
      out, new = flax_model.apply({"params": params, "batch_stats": batch_stats}, v, a, w,
                                  train=True, mutable=["batch_stats"])
      loss = optax.softmax_cross_entropy_with_integer_labels(out["logits"], y).mean()
      return loss, new["batch_stats"]
    (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grads = jax.lax.pmean(grads, "batch")
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_stats, opt_state, loss

  devices = jax.local_devices()
  flax_state = tuple(jax.device_put_replicated(tree, devices) for tree in (
      variables["params"], variables["batch_stats"], optimizer.init(variables["params"])))
  return _Step(jax.pmap(flax_step, axis_name="batch", donate_argnums=(0, 1, 2)),
               flax_state + tuple(inputs), carried=3)


def _dtype_steps(config, variables, inputs, mode):
  """The same Flax network and variables computing in float32 and in bfloat16."""
  steps = {}
  for dtype in ("float32", "bfloat16"):
    typed = config.copy_and_resolve_references()
    typed.dtype = dtype
    model = models.create_model(typed, axis_name="batch" if mode == "train" else None)
    if mode == "train":
      steps[dtype] = _flax_train_step(model, variables, inputs)
    else:
      apply = jax.jit(lambda variables, v, a, w, model=model: model.apply(variables, v, a, w,
                                                                          train=False))
      steps[dtype] = _Step(apply, (jax.device_put(variables),) + tuple(inputs[:3]))
  return steps


def _measure(functions, repeats, clips_per_step, pair=("flax", "haiku")):
  results = {}
  for name, fn in functions.items():
    start = time.perf_counter()
    cost = fn.compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(fn())
    results[name] = {"compile_s": round(compile_s, 2),
                     "first_step_s": round(time.perf_counter() - start, 3),
                     "xla_cost": cost, "step_s": [], "cpu_s": []}
  for _ in range(repeats):  # alternate, so load changes hit both networks alike
    for name, fn in functions.items():
      start, cpu_start = time.perf_counter(), time.process_time()
      jax.block_until_ready(fn())
      results[name]["cpu_s"].append(round(time.process_time() - cpu_start, 4))
      results[name]["step_s"].append(round(time.perf_counter() - start, 4))
  for result in results.values():
    best, median = min(result["step_s"]), statistics.median(result["step_s"])
    result["best_step_s"], result["median_step_s"] = best, round(median, 4)
    result["median_cpu_s"] = round(statistics.median(result["cpu_s"]), 4)
    result["clips_per_s"] = round(clips_per_step / best, 3)
    result["clips_per_s_median"] = round(clips_per_step / median, 3)
    result["clips_per_cpu_s"] = round(clips_per_step / result["median_cpu_s"], 3)
  flax, haiku = results[pair[0]], results[pair[1]]  # numerator, denominator
  ratios = {"best": flax["clips_per_s"] / haiku["clips_per_s"],
            "median": flax["clips_per_s_median"] / haiku["clips_per_s_median"],
            "cpu": flax["clips_per_cpu_s"] / haiku["clips_per_cpu_s"]}
  return results, {key: round(value, 3) for key, value in ratios.items()}


def run(args) -> dict:
  devices = jax.local_device_count()
  sizes = {"small": {"frames": args.frames, "image_size": args.image_size,
                     "audio_frames": args.audio_frames}, "full": FULL}
  output = {
      "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                  "backend": jax.default_backend(),
                  "devices": [str(d) for d in jax.local_devices()],
                  "jax": jax.__version__, "load_average_start": os.getloadavg()},
      "batch_per_device": args.batch, "repeats": args.repeats, "runs": [],
  }
  for backbone in args.backbones:
    checkpoint = reference.random_checkpoint(model_config.BACKBONES[backbone], seed=0)
    config = model_config.get_config(backbone)
    config.use_text = True
    for size_name in args.sizes:
      shape = sizes[size_name]
      for mode in args.modes:
        leading = (devices,) if mode == "train" else ()
        inputs = _inputs(leading, args.batch, **shape)
        flax_model = models.create_model(config, axis_name="batch" if mode == "train" else None)
        one = tuple(x[0] for x in inputs) if leading else inputs
        expected = jax.eval_shape(lambda: flax_model.init(jax.random.PRNGKey(0), *one[:3],
                                                          train=False))
        variables, _ = checkpoints.convert(checkpoint, expected)
        clips = args.batch * (devices if mode == "train" else 1)
        if args.compare == "dtype":
          functions = _dtype_steps(config, variables, inputs, mode)
          pair, ratio_key = ("bfloat16", "float32"), "ratio_bfloat16_over_float32"
        else:
          build = _eval_steps if mode == "eval" else _train_steps
          functions = build(backbone, checkpoint, variables, flax_model, inputs)
          pair, ratio_key = ("flax", "haiku"), "ratio_flax_over_haiku"
        results, ratio = _measure(functions, args.repeats, clips, pair)
        run_result = {"backbone": backbone, "size": size_name, "mode": mode,
                      "clips_per_step": clips, **shape, **results, ratio_key: ratio,
                      "load_average": os.getloadavg()[0]}
        output["runs"].append(run_result)
        print(json.dumps({k: run_result[k] for k in ("backbone", "size", "mode", ratio_key)}),
              file=sys.stderr, flush=True)  # progress while the full JSON is assembled
        del functions, variables
  output["load_average_end"] = os.getloadavg()
  output["summary"] = {f"{r['backbone']}/{r['size']}/{r['mode']}": r.get(
      "ratio_flax_over_haiku", r.get("ratio_bfloat16_over_float32")) for r in output["runs"]}
  return output


def main(argv=None):
  args = _parse_args(argv)
  output = run(args)
  text = json.dumps(output, indent=2)
  print(text)
  if args.out:
    args.out.write_text(text)


if __name__ == "__main__":
  main()
