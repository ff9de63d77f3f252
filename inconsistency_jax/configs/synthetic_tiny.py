r"""CPU-sized run on the synthetic set (data.synth): the demo, the tests and a quick try-out.

  python -m data.synth --out /tmp/synth --layout fakeavceleb --identities 24
  for s in train val test; do python -m data.prepare --dataset synthetic \
      --root /tmp/synth/FakeAVCeleb_v1.2 --split $s --out /tmp/records/$s; done
  python -m inconsistency_jax.train --config inconsistency_jax/configs/synthetic_tiny.py \
      --config.data.root=/tmp/records --workdir /tmp/runs/tiny
  python -m inconsistency_jax.evaluate --config inconsistency_jax/configs/synthetic_tiny.py \
      --config.data.root=/tmp/records --workdir /tmp/runs/tiny

Differences from configs/default.py, all for speed on two CPU cores: the 'tiny' model (IR-18
with 8..64 channels, one-layer transformers and Whisper; see configs/model.py) on 64-px faces,
0.5-s windows of 4 faces, T = 3 windows per identity and N = 4 identities per step, random
initialisation (no pre-trained AdaFace / Whisper exist in that size), a higher learning rate
and a few hundred steps. The synthetic set's own splits are used: training on the reals of
'train', validation on the reals of 'val', scoring on 'test'. The synthetic FakeAVCeleb layout
also has FVRA-FS and FVRA-GAN fakes (the latter holding the identity-drift videos), so the
category table lists all seven fake categories.

Variants: ``synthetic_tiny.py:smoke`` (a handful of steps on 2 identities without validation,
for the tests).
"""
import ml_collections

from inconsistency_jax.configs import default

SYNTHETIC_CATEGORIES = ("RVFA", "FVRA-WL", "FVRA-FS", "FVRA-GAN", "FVFA-FS", "FVFA-GAN",
                        "FVFA-WL")


def get_config(variant: str = "demo") -> ml_collections.ConfigDict:
  if variant not in ("demo", "smoke"):
    raise ValueError(f"synthetic_tiny variant must be 'demo' or 'smoke', got {variant!r}")
  c = default.base("tiny")
  c.name = "inconsistency_synthetic_tiny"
  c.model.face_size = 64
  c.input.num_windows = 3
  c.input.score_num_windows = 6
  c.data.train = "train"
  c.data.val = "val"
  c.data.test = ml_collections.ConfigDict({"synthetic": "test"})

  c.loss.tau = 0.1
  c.loss.tau_prime = 0.1
  c.train.identities_per_batch = 4
  c.train.num_steps = 150
  c.train.learning_rate = 1e-3
  c.train.warmup_steps = 10
  c.train.weight_decay = 1e-4
  c.train.log_every_steps = 10
  c.train.checkpoint_every_steps = 50
  c.train.val_every_steps = 50
  c.train.val_steps = 2

  c.eval.batch_size = 4
  c.eval.table2_set = "synthetic"
  c.eval.categories = SYNTHETIC_CATEGORIES
  c.eval.fake_video_categories = SYNTHETIC_CATEGORIES[1:]
  c.eval.motion_set = "synthetic"
  c.eval.motion_bins = 2
  if variant == "smoke":
    c.data.val = ""  # no validation: one compiled program less
    c.train.identities_per_batch = 2
    c.train.num_steps = 6
    c.train.warmup_steps = 2
    c.train.log_every_steps = 1
    c.train.checkpoint_every_steps = 2
    c.train.val_every_steps = 2
    c.train.val_steps = 1
  return c
