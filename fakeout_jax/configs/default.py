"""Base experiment config of FakeOut fine-tuning; every paper experiment starts from `base()`.

Data locations are relative to ``data.root`` (a folder of record sets written by
``python -m data.prepare``), set on the command line::

  python -m fakeout_jax.finetune --config fakeout_jax/configs/table2_cross_manipulation.py:NT \\
      --config.data.root=/data/records --config.init.checkpoint=/ckpt/mmv_tsm_resnet_x2.pkl \\
      --workdir runs/table2_nt

A record set is a folder of shards (or a glob). ``keep_methods`` restricts the FAKE tracks of a
set to some manipulation methods (reals are always kept), which is how one FF++ record set
serves the leave-one-out and cross-approach protocols.
"""
import ml_collections

from fakeout_jax import input_pipeline
from fakeout_jax.configs import model as model_config


def record_set(path: str, keep_methods=(), keep_categories=(),
               cells=()) -> ml_collections.ConfigDict:
  """A set of record shards, optionally restricted to some fake methods/categories.

  `cells` name the paper-table cells its evaluation fills, as 'table:row:column:metric'
  (metric: auc, ap, accuracy, or e.g. 'per_category/RVFA/auc'); fakeout_jax.tables collects them.
  """
  return ml_collections.ConfigDict({"path": path, "keep_methods": tuple(keep_methods),
                                    "keep_categories": tuple(keep_categories),
                                    "cells": tuple(cells)})


def base(backbone: str = "tsm_resnet_x2", modality: str = "video_audio"):
  c = ml_collections.ConfigDict()
  c.name = "fakeout"

  c.model = model_config.get_config(backbone)
  c.model.modality = modality
  c.input = input_pipeline.get_config()
  c.input.use_audio = modality == "video_audio"

  c.data = ml_collections.ConfigDict()
  c.data.root = ml_collections.config_dict.placeholder(str)
  c.data.train = record_set("ffpp/train")
  c.data.val = record_set("ffpp/val")
  # name -> record set; evaluated after training and by fakeout_jax.evaluate.
  c.data.test = ml_collections.ConfigDict({"ffpp": record_set("ffpp/test")})

  # Initialisation: 'mmv' (DeepMind's MMV pickle, fresh classifier), 'fakeout' (a FakeOut pickle
  # with its classifier), 'flax' (variables written by `python -m fakeout_jax.convert` or a
  # finetune workdir), 'pretrained' (a `python -m fakeout_jax.pretrain` workdir: backbone and
  # MMV heads, fresh classifier), or 'scratch'. `partial` allows a checkpoint without some
  # parts (e.g. a video-only backbone for the backbone ablation); what is missing stays freshly
  # initialised.
  c.init = ml_collections.ConfigDict()
  c.init.mode = "mmv"
  c.init.checkpoint = ml_collections.config_dict.placeholder(str)
  c.init.partial = False

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 8          # global, over all hosts and devices
  c.train.num_epochs = 6
  # Adam (0.9, 0.999, 1e-8); cosine decay from 1e-5 to alpha * 1e-5 (alpha 0.95) over training.
  c.train.learning_rate = 1e-5
  c.train.cosine_alpha = 0.95
  c.train.adam_b1 = 0.9
  c.train.adam_b2 = 0.999
  c.train.adam_eps = 1e-8
  c.train.weight_decay = 0.0
  # Linear probing (paper Fig. 5/15): backbone frozen, in inference mode; only the head trains.
  c.train.linear_probe = False
  c.train.seed = 0
  c.train.log_every_steps = 10
  c.train.checkpoint_every_steps = 500
  c.train.eval_every_epochs = 1

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 4           # tracks per batch, global (each with input.eval_num_clips clips)
  c.eval.threshold = 0.5          # accuracy threshold on the fake probability
  # Table layout the evaluation prints: 'auc' columns per test set (see fakeout_jax.evaluate).
  c.eval.table = "cross_dataset"
  return c


def get_config():
  return base()
