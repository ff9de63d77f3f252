r"""FakeOut Fig. 6: which pre-training helps? MMV vs ImageNet vs Kinetics vs from scratch.

The same TSM-ResNet50 video network (x1, video only: the supervised backbones have no audio
tower), fine-tuned on FF++ (all four methods) from four starting points, tested on FF++ test
and the cross-dataset sets of Table 4 (video-level ROC-AUC).

  --config fakeout_jax/configs/fig6_backbones.py:BACKBONE

BACKBONE and the checkpoint to pass as --config.init.checkpoint:

* ``mmv``: DeepMind's ``mmv_tsm_resnet_x1.pkl`` (self-supervised on HowTo100M + AudioSet; what
  FakeOut builds on), read by init.mode='mmv'.
* ``imagenet``: an ImageNet-supervised pre-activation ResNet-50 (ResNetV2-50, e.g. TF-Slim's
  ``resnet_v2_50`` or timm's ``resnetv2_50``). The temporal shift adds no parameters, so its 2D
  convolutions are the TSM network's, frame by frame.
* ``kinetics``: a TSM-ResNetV2-50 (pre-activation, MMV's architecture) trained supervised on
  Kinetics-400. The widely used TSM releases (MIT HAN Lab) are post-activation ResNet-50 v1 and
  do NOT map onto this network; the paper does not say which checkpoint it used.
* ``scratch``: no checkpoint (random initialisation; init.mode='scratch').
* ``self_pretrained``: a ``python -m fakeout_jax.pretrain`` workdir (MMV's video-audio NCE run
  by this project on your own unlabeled videos) of the same model, e.g. pre-trained with
  ``--config fakeout_jax/configs/pretrain_default.py --config.model.backbone=tsm_resnet_x1
  --config.model.width_mult=1``; read by init.mode='pretrained' (backbone and MMV heads; the
  classifier starts fresh). Not a row of the paper: this project's answer for users without
  DeepMind's weights.

ImageNet and Kinetics load with init.mode='flax' and init.partial=True: convert the weights
yourself into this project's Flax layout of the video encoder only and save them with
``fakeout_jax.checkpoints.save_variables(DIR, {'params': {'video_encoder': ...},
'batch_stats': {'video_encoder': ...}})``; pass DIR as init.checkpoint. Names: ``stem_conv``
(7x7 kernel, HWIO), ``unit_{0..3}/block_{i}/{conv_0,conv_1,conv_2,shortcut_conv}/kernel``,
``unit_*/block_*/norm_{0,1,2}/{scale,bias}``, ``final_norm/{scale,bias}``; batch statistics as
``<norm>/{mean_ema,var_ema}/{average,hidden,counter}`` (MMV's zero-debiased moving averages:
put the running mean/variance in both ``average`` and ``hidden`` with a large ``counter`` such
as 10**6). ``python -m fakeout_jax.convert`` shows the full tree of a converted MMV model. What
the file lacks (audio tower, MMV heads, classifier) stays freshly initialised, with a warning
naming it; an entry of the wrong shape or an unknown name stops the run before training.

Data: ROOT/ffpp/{train,val,test} and the Table 4 test sets (see table4_cross_dataset.py).

  python -m fakeout_jax.finetune --config fakeout_jax/configs/fig6_backbones.py:imagenet \
      --config.data.root=ROOT --config.init.checkpoint=imagenet_tsm50 --workdir runs/fig6_imagenet
  python -m fakeout_jax.evaluate --config fakeout_jax/configs/fig6_backbones.py:imagenet \
      --config.data.root=ROOT --checkpoint runs/fig6_imagenet
"""
from fakeout_jax.configs import paper

BACKBONES = {
    "mmv": ("MMV (self-supervised)", "mmv", False),
    "imagenet": ("ImageNet (supervised)", "flax", True),
    "kinetics": ("Kinetics-400 (supervised)", "flax", True),
    "scratch": ("Scratch", "scratch", False),
    "self_pretrained": ("Self-supervised (this project's MMV pre-training)", "pretrained",
                        False),
}


def get_config(arg=None):
  backbone = paper.parse_arg(arg, {"backbone": tuple(BACKBONES)}, {"backbone": None},
                             config="fig6_backbones")["backbone"]
  row, init_mode, partial = BACKBONES[backbone]
  c = paper.ffpp_experiment(f"fig6_{backbone}", "x1_v")
  c.init.mode = init_mode
  c.init.partial = partial
  c.data.test = paper.cross_dataset_tests(f"fig6:{row}:{{column}}")
  c.data.test.ffpp = paper.test_set(paper.FFPP_TEST, cells=(f"fig6:{row}:FF++:auc",))
  return c
