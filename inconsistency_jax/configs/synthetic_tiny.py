r"""CPU-sized run on the synthetic set (data.synth): the demo, the tests and a quick try-out.

  python -m data.synth --out /tmp/synth --layout fakeavceleb --identities 40 \
      --videos-per-identity 2 --max-seconds 6 --max-height 360 --seed 3
  for s in train test; do python -m data.prepare --dataset synthetic \
      --root /tmp/synth/FakeAVCeleb_v1.2 --split $s --out /tmp/records/$s; done
  python -m inconsistency_jax.train --config inconsistency_jax/configs/synthetic_tiny.py \
      --config.data.root=/tmp/records --workdir /tmp/runs/tiny
  python -m inconsistency_jax.evaluate --config inconsistency_jax/configs/synthetic_tiny.py \
      --config.data.root=/tmp/records --workdir /tmp/runs/tiny \
      --config.eval.ground_truth=/tmp/synth/FakeAVCeleb_v1.2/synthetic_ground_truth.csv

(Training reads only the real tracks of 'train'; preparing the fakes of that split is wasted
time but harmless.)

Differences from configs/default.py, all for speed on two CPU cores: the 'tiny' model (IR-18
with 8..64 channels, one-layer transformers and Whisper; see configs/model.py) on 64-px faces,
0.5-s windows of 4 faces, T = 4 windows per identity and N = 4 identities per step, random
initialisation (no pre-trained AdaFace / Whisper exist in that size), 300 steps at a higher
learning rate, no validation (``--config.data.val=val`` turns it on; it costs one more compiled
program). Trained from scratch, the cross-modal branch first sits in a collapse where every
window of a video gets the same embedding (the Eq. 3 loss stays at ln T for a few hundred
steps); three choices shorten that phase so that 300 steps suffice (measured on a 40-identity
synthetic set, see the README): no dropout in the IResNet heads, alpha = mean of the Whisper
tokens + a linear map (``audio.pooling='mean'``), and T = 4 (three negatives per window in
Eq. 3 instead of two). The synthetic set's own splits are used: training on the reals of
'train', scoring on 'test'. The synthetic FakeAVCeleb layout also has FVRA-FS and FVRA-GAN
fakes (the latter holding the identity-drift videos), so the category table lists all seven
fake categories; ``--config.eval.ground_truth=.../synthetic_ground_truth.csv`` adds a table
per synthetic kind (rvfa, lipsync, drift, ...).

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
  c.model.identity.dropout = 0.0
  c.model.visual.dropout = 0.0
  c.model.audio.pooling = "mean"
  c.input.num_windows = 4
  c.input.score_num_windows = 6
  c.data.train = "train"
  c.data.val = ""
  c.data.test = ml_collections.ConfigDict({"synthetic": "test"})

  c.loss.tau = 0.1
  c.loss.tau_prime = 0.1
  c.train.identities_per_batch = 4
  c.train.num_steps = 300
  c.train.learning_rate = 1e-3
  c.train.warmup_steps = 10
  c.train.weight_decay = 1e-4
  c.train.log_every_steps = 10
  c.train.checkpoint_every_steps = 100
  c.train.val_every_steps = 100
  c.train.val_steps = 2

  c.eval.batch_size = 4
  c.eval.table2_set = "synthetic"
  c.eval.categories = SYNTHETIC_CATEGORIES
  c.eval.fake_video_categories = SYNTHETIC_CATEGORIES[1:]
  c.eval.motion_set = "synthetic"
  c.eval.motion_bins = 2
  if variant == "smoke":
    c.input.num_windows = 3  # the test tracks are 50 frames: 3 windows of 14
    c.train.identities_per_batch = 2
    c.train.num_steps = 6
    c.train.warmup_steps = 2
    c.train.log_every_steps = 1
    c.train.checkpoint_every_steps = 2
    c.train.val_every_steps = 2
    c.train.val_steps = 1
  return c
