r"""Base run config of the inconsistency detector (Tian et al.); every experiment starts here.

  python -m inconsistency_jax.train --config inconsistency_jax/configs/default.py \
      --config.data.root=/data/records \
      --config.input.exclude_identities=/data/FakeAVCeleb_v1.2/meta_data.csv \
      --config.init.adaface=/ckpt/adaface_ir101 --config.init.whisper=/ckpt/whisper_small \
      --workdir runs/inconsistency

Record sets are folders of shards written by ``python -m data.prepare`` (or globs), relative to
``data.root``. Training reads REAL tracks only (fakes are skipped and counted).

Choices where the paper is silent (NOTES.md lists them as unknown), each the default here:

* T, windows per identity in a training batch: ``input.num_windows = 4``. VoxCeleb2 clips last at
  least 4 s, so with 1-s windows every clip can give T non-overlapping windows; the Eq. 3
  negatives are the other T - 1 windows of the same video.
* T at scoring time: ``input.score_num_windows = 8``: finer localisation on FakeAVCeleb's longer
  videos; a shorter track gets as many 1-s windows as fit (at least 2), and its rows say so
  (``num_windows`` < 8).
* Window length ``model.window_seconds = 1.0`` with ``model.frames_per_window = 8`` faces
  (see configs/model.py).
* N, identities per batch: ``train.identities_per_batch = 64`` (global, over all devices and
  hosts): 64 x 4 windows x 8 faces = 2048 faces through mu and gamma per step. Every device
  all-gathers the identity embeddings, so each window has 63 identities x 4 windows as
  negatives in Eq. 2, whatever the device count.
* Temperatures ``loss.tau = 0.07`` (Eq. 2) and ``loss.tau_prime = 0.07`` (Eq. 3): the value of
  MoCo and CLIP for unit embeddings; the loss then separates similarities by ~0.1 steps.
* ``loss.intra_weight = loss.cross_weight = 1``: the two losses are summed, as the score is.
* Scoring percentile ``eval.percentile = 5`` (n): the 5th percentile of the T x T identity
  similarities reacts to a few windows of another identity (with T = 8, 3 of the 64 entries)
  but not to one noisy window pair.
* Optimiser: AdamW, peak learning rate 1e-4 after 1000 warm-up steps, cosine decay to 0 over
  ``train.num_steps = 50000``, weight decay 0.05 on kernels only, gradients clipped at global
  norm 1. Whisper's sinusoidal position table stays fixed (``models.trainable_mask``).
* Augmentation: a horizontal flip per window with probability 1/2 (identity and lip motion do
  not depend on the side).
"""
import ml_collections
import ml_collections.config_dict

from data.datasets import splits
from inconsistency_jax import input_pipeline
from inconsistency_jax.configs import model as model_config


def base(model_variant: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "inconsistency"

  c.model = model_config.get_config(model_variant)
  c.model.bn_axis_name = "batch"  # batch statistics over all devices of a pmapped step
  c.input = input_pipeline.get_config()

  c.data = ml_collections.ConfigDict()
  c.data.root = ml_collections.config_dict.placeholder(str)
  c.data.train = "voxceleb2/dev"
  # Real videos held out from training: their mean loss picks the 'best' checkpoint ('' = none).
  c.data.val = "voxceleb2/test"
  # name -> record set scored by `python -m inconsistency_jax.evaluate` (and after training).
  c.data.test = ml_collections.ConfigDict({"fakeavceleb": "fakeavceleb/all"})

  # Pre-trained networks, as written by `python -m inconsistency_jax.convert` (None: random).
  c.init = ml_collections.ConfigDict()
  c.init.adaface = ml_collections.config_dict.placeholder(str)
  c.init.whisper = ml_collections.config_dict.placeholder(str)

  c.loss = ml_collections.ConfigDict()
  c.loss.tau = 0.07
  c.loss.tau_prime = 0.07
  c.loss.intra_weight = 1.0
  c.loss.cross_weight = 1.0
  c.loss.exclude_same_window = False

  c.train = ml_collections.ConfigDict()
  c.train.identities_per_batch = 64   # N, global
  c.train.num_steps = 50_000
  c.train.learning_rate = 1e-4
  c.train.warmup_steps = 1000
  c.train.weight_decay = 0.05
  c.train.grad_clip_norm = 1.0
  c.train.seed = 0
  c.train.log_every_steps = 50
  c.train.checkpoint_every_steps = 1000
  c.train.val_every_steps = 2000
  c.train.val_steps = 20               # batches of the val set per validation
  c.train.score_after_training = False  # run the evaluation on data.test at the end

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 16              # tracks per batch, global
  c.eval.percentile = 5.0             # n of Score_intra
  c.eval.checkpoint = "latest"        # 'latest' or 'best' of the workdir
  # Table 2: per-category AUC/AP of this test set, in these columns; AVG-FV averages the
  # fake-video ones.
  c.eval.table2_set = "fakeavceleb"
  c.eval.categories = splits.FAKEAVCELEB_PAPER_CATEGORIES
  c.eval.fake_video_categories = splits.FAKEAVCELEB_FAKE_VIDEO_CATEGORIES
  # Table 3: quality name -> test set (the same videos re-encoded, see data.reencode); the
  # table2 set is the 'RAW' column.
  c.eval.compression_sets = ml_collections.ConfigDict()
  # KoDF adversarial subset: mean +- std AUC over draws of 276 real + 544 fake ('' = skip).
  c.eval.kodf_set = ""
  c.eval.kodf_draws = splits.KODF_DRAWS
  c.eval.kodf_real = splits.KODF_DRAW_REAL
  c.eval.kodf_fake = splits.KODF_DRAW_FAKE
  c.eval.kodf_seed = 0
  # Fig. 4: AUC against motion magnitude on this set, in this many quantile bins ('' = skip).
  c.eval.motion_set = "fakeavceleb"
  c.eval.motion_bins = 4
  # Optional ground truth keyed by video path (e.g. data.synth's synthetic_ground_truth.csv):
  # an extra table of AUC per value of this column ('' = none).
  c.eval.ground_truth = ""
  c.eval.ground_truth_column = "kind"
  return c


def get_config():
  return base()
