r"""Base config of MMV-style self-supervised pre-training (``python -m fakeout_jax.pretrain``).

`base()` is shared by every pre-training config; `get_config()` is the paper-scale one: the
TSM-ResNet50 x2 video tower and ResNet50 audio tower FakeOut fine-tunes, trained from scratch
with MMV's video-audio NCE on unlabeled video::

  python -m fakeout_jax.pretrain --config fakeout_jax/configs/pretrain_default.py \
      --config.data.root=/data/records --config.data.train.path=voxceleb2/train \
      --config.data.val.path=voxceleb2/val --workdir runs/pretrain_x2 --tpu

then ``python -m fakeout_jax.finetune --config ... --config.init.mode=pretrained
--config.init.checkpoint=runs/pretrain_x2``.

What MMV's paper (arXiv 2006.16228) fixes and this config follows: the fac embedding graph
(video -> S_va through a 2-layer MLP head, audio -> S_va through a linear head, 512-d S_va; the
module names are the released model's, see fakeout_jax.models.mmv_heads), NCE between the video
and audio embeddings of the same clip with the other clips of the batch as negatives, a
temperature of 0.07, cross-replica batch norm, video and audio of one clip from the same time
span. What this project chose where the paper leaves it open or where its training data
cannot be had (HowTo100M + AudioSet; their training code was never published), each a field
below: the loss direction (symmetric: video->audio and audio->video averaged), cosine scores
(L2-normalised embeddings), the clip geometry (FakeOut's: 32 frames stride 2 at 224 px, and its
1.1 s audio window starting at the clip's first frame), FakeOut's video augmentation (flip,
brightness, hue; MMV also crops and jitters colour), the optimiser (AdamW with warm-up and cosine
decay) and its numbers, which are NOT MMV's (a 4096-clip, 500k-step TPU schedule is not what a
user of this project runs; set them for your data and hardware).
"""
import ml_collections

from fakeout_jax.configs import default


def base(model: ml_collections.ConfigDict, input_config: ml_collections.ConfigDict,
         name: str) -> ml_collections.ConfigDict:
  """A pre-training config around a FakeOut model sub-config (the one fine-tuning will use)."""
  c = ml_collections.ConfigDict()
  c.name = name
  c.model = ml_collections.ConfigDict(model.to_dict())
  c.model.modality = "video_audio"
  c.model.compute_embeddings = True
  c.input = ml_collections.ConfigDict(input_config.to_dict())
  c.input.use_audio = True
  c.input.oversample = "none"         # labels are ignored: every track once per epoch
  # Clips per track in a row, each at its own random time: with K > 1 a clip's negatives also
  # include its own video's audio at other times, so matching voice to face is not enough and
  # the embeddings must follow the timing (lip sync). MMV: one clip per video (K = 1).
  c.input.clips_per_track = 1
  # With K > 1: the K clips of a track share one augmentation draw (flip, brightness, hue), so
  # only time differs between a clip and its same-video negatives.
  c.input.augment_per_track = False

  c.data = ml_collections.ConfigDict()
  c.data.root = ml_collections.config_dict.placeholder(str)
  c.data.train = default.record_set("pretrain/train")
  c.data.val = default.record_set("pretrain/val")   # held-out videos: NCE loss, best checkpoint

  c.pretrain = ml_collections.ConfigDict()
  c.pretrain.temperature = 0.07       # MMV's NCE temperature
  # Cosine similarity (L2-normalised S_va embeddings) rather than raw dot products: the paper
  # writes the score as a dot product of the embeddings; normalising keeps the scale of the
  # freshly initialised heads from mattering. An open choice; False gives raw dot products.
  c.pretrain.normalize_embeddings = True
  # Negatives of a clip: 'batch' (MMV: every other clip of the global batch) or 'same_track'
  # (only the other clips_per_track clips of its own video, at other times: the loss can then
  # be lowered only by lip-audio timing, not by matching a voice to a face).
  c.pretrain.negatives = "batch"
  # With 'same_track' negatives: subtract each track's mean embedding (per modality, over its
  # clips_per_track clips) before the normalisation, so the scores compare only what differs
  # between the clips of one video (not in MMV).
  c.pretrain.center_within_track = False
  # Which labels' tracks to read; () = all. (0,) = the real videos of a deepfake data set.
  c.pretrain.keep_labels = ()
  # MMV's MIL-NCE between video and narration text: not implemented (must stay 0).
  c.pretrain.text_loss_weight = 0.0

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 256            # global: the NCE negatives are the whole global batch
  c.train.num_epochs = 100
  c.train.learning_rate = 1e-3
  c.train.warmup_steps = 1000
  c.train.cosine_alpha = 0.0
  c.train.adam_b1 = 0.9
  c.train.adam_b2 = 0.999
  c.train.adam_eps = 1e-8
  c.train.weight_decay = 1e-5
  c.train.gradient_clip_norm = 0.0    # 0: no clipping
  c.train.seed = 0
  c.train.log_every_steps = 50
  c.train.checkpoint_every_steps = 1000
  c.train.eval_every_epochs = 1
  return c


def get_config():
  finetune = default.base("tsm_resnet_x2", "video_audio")
  return base(finetune.model, finetune.input, "pretrain_tsm_resnet_x2")
