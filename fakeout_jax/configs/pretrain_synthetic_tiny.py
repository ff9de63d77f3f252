r"""MMV-style pre-training of the demo's tiny FakeOut on the REAL training videos (CPU).

The model and input sub-configs are synthetic_tiny's, so the workdir is a starting point of
``synthetic_tiny`` fine-tuning (``--config.init.mode=pretrained``). Labels are ignored except to
keep only the real tracks (``pretrain.keep_labels=(0,)``): the fakes' audio-visual mismatch is
what fine-tuning is to detect, so the backbone learns what agreement looks like from reals.
Validation (best checkpoint by NCE loss) reads the real tracks of the VAL identities.

  python -m fakeout_jax.pretrain --config fakeout_jax/configs/pretrain_synthetic_tiny.py \
      --config.data.root=demo_out/records --workdir demo_out/pretrain
"""
from fakeout_jax.configs import pretrain_default
from fakeout_jax.configs import synthetic_tiny


def get_config():
  tiny = synthetic_tiny.get_config()
  c = pretrain_default.base(tiny.model, tiny.input, "pretrain_synthetic_tiny")
  c.data.train = tiny.data.train
  c.data.val = tiny.data.val
  c.pretrain.keep_labels = (0,)
  # 4 clips of each video at different times in every batch: the other times of the same video
  # are negatives too, so the embeddings must follow lip timing, not just voice and face.
  c.input.clips_per_track = 4
  c.train.batch_size = 16
  c.train.num_epochs = 10
  c.train.learning_rate = 1e-3
  c.train.warmup_steps = 5
  c.train.cosine_alpha = 0.05
  c.train.weight_decay = 0.0
  c.train.log_every_steps = 5
  c.train.checkpoint_every_steps = 20
  return c
