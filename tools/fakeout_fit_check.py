"""Can the FakeOut training step fit anything? A diagnostic for a run whose loss stays at ln 2.

  python tools/fakeout_fit_check.py --records demo_out/records [--config CONFIG] [--steps 60]

Takes ONE training batch of the config's input pipeline (the demo's records by default) and runs
`finetune.train_step` on it again and again. A working loop drives the loss of a fixed batch
towards 0 within a few dozen steps; if it does, a run that stays at ln 2 on the real stream lacks
a learnable, generalising signal (or the budget to find it), not a working optimiser.
"""
import argparse
import functools
import glob
import json
import os

import jax

from fakeout_jax import configs, finetune, input_pipeline, models, state as state_lib


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--records", required=True, help="root of the record sets (data.root)")
  parser.add_argument("--config", default="fakeout_jax/configs/synthetic_tiny.py")
  parser.add_argument("--batch-size", type=int, default=16)
  parser.add_argument("--steps", type=int, default=60)
  args = parser.parse_args(argv)
  config = configs.load(args.config)
  files = sorted(glob.glob(os.path.join(args.records, config.data.train.path, "*.tfrecord")))
  if not files:
    raise SystemExit(f"no *.tfrecord under {os.path.join(args.records, config.data.train.path)}")
  ds = input_pipeline.train_dataset(files, config.input, batch_size=args.batch_size, seed=0,
                                    epoch=0)
  batch = next(ds.as_numpy_iterator())
  model = models.create_model(config.model, axis_name="batch")
  state = state_lib.create_train_state(config, model, jax.random.PRNGKey(0), args.steps)
  state = jax.device_put_replicated(state, jax.local_devices()[:1])
  step = jax.pmap(functools.partial(finetune.train_step, model=model, linear_probe=False),
                  axis_name="batch")
  fixed = {k: v[None] for k, v in batch.items() if k in ("video", "audio", "label")}
  losses = []
  for _ in range(args.steps):
    state, metrics = step(state, fixed)
    losses.append(float(metrics["loss"][0]))
  result = {"batch_size": args.batch_size, "labels": batch["label"].tolist(),
            "loss_first": losses[0], "loss_last": losses[-1],
            "loss_every_10": losses[::10]}
  print(json.dumps(result, indent=1))
  return result


if __name__ == "__main__":
  main()
