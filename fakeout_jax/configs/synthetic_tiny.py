"""A tiny FakeOut for CPU on the synthetic set (the demo's configuration).

No pretrained weights can be downloaded where this project is built and tested, so the demo
starts either from scratch or from this project's own MMV-style pre-training on the real
training videos (``pretrain_synthetic_tiny.py``): the same architecture family
(pre-activation TSM-ResNetV2 video tower, ResNetV2 audio tower, MMV heads, FakeOut's head) at
1/8 width with one block per unit, on clips of 8 consecutive 64x64 frames (0.28 s) with their
own audio span, 8 such clips per track in evaluation. The numbers it reaches describe a toy
problem; they say nothing about the released model's accuracy.

  python -m fakeout_jax.finetune --config fakeout_jax/configs/synthetic_tiny.py \\
      --config.data.root=demo_out/records --workdir demo_out/fakeout_scratch
  python -m fakeout_jax.pretrain --config fakeout_jax/configs/pretrain_synthetic_tiny.py \\
      --config.data.root=demo_out/records --workdir demo_out/pretrain
  python -m fakeout_jax.finetune --config fakeout_jax/configs/synthetic_tiny.py \\
      --config.data.root=demo_out/records --config.init.mode=pretrained \\
      --config.init.checkpoint=demo_out/pretrain --workdir demo_out/fakeout
"""
from fakeout_jax import input_pipeline
from fakeout_jax.configs import default


def get_config():
  c = default.base("tsm_resnet_x1", "video_audio")
  c.name = "synthetic_tiny"
  c.model.width_mult = 0.125
  c.model.blocks_per_unit = (1, 1, 1, 1)
  c.model.audio_width_mult = 0.125
  c.model.audio_blocks_per_unit = (1, 1, 1, 1)
  c.model.head.activation = "relu"
  c.model.compute_embeddings = True

  c.input.num_frames = 8
  # Consecutive frames: a clip spans about one syllable. Both towers pool over time, so a clip
  # can only tell how much its mouth moves and how much of it is voiced; over a syllable these
  # differ from clip to clip, over 0.55 s (stride 2) they average out and self-supervised
  # pre-training did not leave chance (pretrain_synthetic_tiny.py).
  c.input.frame_stride = 1
  c.input.image_size = 64
  c.input.eval_num_clips = 8
  c.input.shuffle_buffer = 64
  # The audio of a clip is the time its frames span, cut at its first frame, in training AND
  # evaluation (the released code's evaluation places its audio windows apart from the clips):
  # the synthetic fakes differ from the reals in WHEN the mouth moves (lip-sync), which only
  # clip-aligned audio can show.
  c.input.audio_window = int(input_pipeline.constants.SAMPLE_RATE / input_pipeline.constants.FPS
                             * c.input.num_frames * c.input.frame_stride)
  c.input.eval_audio_alignment = "aligned"

  c.data.train = default.record_set("synthetic/train")
  c.data.val = default.record_set("synthetic/val")  # held-out identities, not the test ones
  c.data.test = {"synthetic": default.record_set("synthetic/test", cells=(
      "demo:FakeOut tiny (scratch):synthetic:auc",))}

  c.init.mode = "scratch"
  c.train.batch_size = 8
  c.train.num_epochs = 12
  # The same for the scratch control and the self-pre-trained start (the paper's 1e-5 is for
  # fine-tuning MMV's full-size network).
  c.train.learning_rate = 3e-4
  c.train.cosine_alpha = 0.05
  c.train.log_every_steps = 5
  c.train.checkpoint_every_steps = 52
  c.train.eval_every_epochs = 4
  c.eval.batch_size = 4
  return c
