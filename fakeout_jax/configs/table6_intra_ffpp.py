r"""FakeOut Table 6: intra-dataset results on FaceForensics++ (c23): accuracy and AUC.

Fine-tuned on FF++ train (all four methods; the same training as Table 4, so a Table 4 run can
be evaluated with this config) and tested on FF++ test: the 140 test reals against the fakes of
all four methods; video-level accuracy at threshold 0.5 and ROC-AUC (per-method AUCs are in
metrics.json too).

  --config fakeout_jax/configs/table6_intra_ffpp.py:VARIANT      (x2_va default, x2_v, x1_*)

Data::

  python -m data.datasets.enrichment --dataset ffpp --root FFPP --split test \
      --out ROOT/ffpp_test.audio_plan.csv
  python -m data.prepare --dataset ffpp --root FFPP --split test --out ROOT/ffpp/test \
      --audio-plan ROOT/ffpp_test.audio_plan.csv
  (and ROOT/ffpp/{train,val} as in Table 2)

  python -m fakeout_jax.evaluate --config fakeout_jax/configs/table6_intra_ffpp.py:x2_va \
      --config.data.root=ROOT --checkpoint runs/ffpp_x2_va --out runs/ffpp_x2_va/eval_table6

Accuracy is over videos, so it depends on the class balance of FF++ test (140 real, 560 fake).
"""
from fakeout_jax.configs import paper
from fakeout_jax.configs import table4_cross_dataset


def get_config(arg=None):
  variant = table4_cross_dataset.variant_arg(arg, "table6_intra_ffpp")
  c = paper.ffpp_experiment(f"table6_{variant}", variant)
  row = paper.row_name(variant)
  c.data.test = {"ffpp": paper.test_set(paper.FFPP_TEST, cells=(
      f"table6:{row}:ACC:accuracy", f"table6:{row}:AUC:auc"))}
  return c
