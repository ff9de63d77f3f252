r"""FakeOut Fig. 5 / Fig. 15: fine-tuning the whole network vs linear probing.

Both modes train on FF++ (all four methods) like Table 4; linear probing freezes the MMV
backbone (in inference mode, its batch statistics fixed) and trains only FakeOut's head.
Tested on FF++ test and the cross-dataset sets of Table 4 (video-level ROC-AUC).

  --config fakeout_jax/configs/fig5_linear_probe.py:MODE[,VARIANT]

MODE: finetune | linear_probe. VARIANT: x2_va (default; Fig. 5), x2_v, x1_va, x1_v (Fig. 15
shows the comparison for the other backbones and modalities; every variant fills a row).

The optimiser is the paper's (Adam, cosine decay from 1e-5) in both modes, so that the only
difference is which parameters train. The paper does not give a separate learning rate for
linear probing; a head trained alone may want a larger one (--config.train.learning_rate=1e-3).
A ``finetune`` run trains exactly as Table 4: its workdir can be evaluated with this config.

Data: ROOT/ffpp/{train,val,test} and the Table 4 test sets (see table4_cross_dataset.py).

  python -m fakeout_jax.finetune --config fakeout_jax/configs/fig5_linear_probe.py:linear_probe \
      --config.data.root=ROOT --config.init.checkpoint=mmv_tsm_resnet_x2.pkl --workdir runs/lp_x2_va
  python -m fakeout_jax.evaluate --config fakeout_jax/configs/fig5_linear_probe.py:linear_probe \
      --config.data.root=ROOT --checkpoint runs/lp_x2_va
"""
from fakeout_jax.configs import paper

MODES = {"finetune": "Fine-tuning", "linear_probe": "Linear probing"}


def get_config(arg=None):
  args = paper.parse_arg(arg, {"mode": tuple(MODES), "variant": tuple(paper.VARIANTS)},
                         {"mode": None, "variant": paper.DEFAULT_VARIANT},
                         config="fig5_linear_probe")
  mode, variant = args["mode"], args["variant"]
  c = paper.ffpp_experiment(f"fig5_{mode}_{variant}", variant)
  c.train.linear_probe = mode == "linear_probe"
  row = f"{MODES[mode]} {paper.row_name(variant)[len('FakeOut '):]}"
  c.data.test = paper.cross_dataset_tests(f"fig5:{row}:{{column}}")
  c.data.test.ffpp = paper.test_set(paper.FFPP_TEST, cells=(f"fig5:{row}:FF++:auc",))
  return c
