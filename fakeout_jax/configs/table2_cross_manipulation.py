r"""FakeOut Table 2: cross-manipulation generalisation on FaceForensics++ (leave one out).

Fine-tunes on FF++ c23 with three of the four manipulation methods (Deepfakes, FaceSwap,
Face2Face, NeuralTextures) and tests on the held-out one: FF++ test reals against the held-out
method's fakes, video-level ROC-AUC. One run per held-out method fills one column of Table 2.

  --config fakeout_jax/configs/table2_cross_manipulation.py:HELD_OUT[,VARIANT]

HELD_OUT: Deepfakes | FaceSwap | Face2Face | NeuralTextures (or DF, FS, F2F, NT).
VARIANT: x2_va (default, FakeOut's released TSM-50x2 V&A), x2_v, x1_va, x1_v.

Data (record sets under --config.data.root=ROOT; FF++ with the authors' audio enrichment: a plan
per split, then the records; S = train, val, test)::

  python -m data.datasets.enrichment --dataset ffpp --root FFPP --split S \
      --out ROOT/ffpp_S.audio_plan.csv
  python -m data.prepare --dataset ffpp --root FFPP --split S --out ROOT/ffpp/S \
      --audio-plan ROOT/ffpp_S.audio_plan.csv

One record set serves all four runs: ``keep_methods`` keeps the training methods' fakes (and
every real) for training and validation, and only the held-out method's fakes for the test.

  python -m fakeout_jax.finetune --config fakeout_jax/configs/table2_cross_manipulation.py:NT \
      --config.data.root=ROOT --config.init.checkpoint=mmv_tsm_resnet_x2.pkl --workdir runs/t2_nt
  python -m fakeout_jax.evaluate --config fakeout_jax/configs/table2_cross_manipulation.py:NT \
      --config.data.root=ROOT --checkpoint runs/t2_nt
"""
from data.datasets import splits
from fakeout_jax.configs import paper

_ALIASES = {abbreviation: method for method, abbreviation in paper.METHOD_ABBREVIATIONS.items()}


def get_config(arg=None):
  args = paper.parse_arg(arg, {"held_out": splits.FFPP_METHODS, "variant": tuple(paper.VARIANTS)},
                         {"held_out": None, "variant": paper.DEFAULT_VARIANT}, _ALIASES,
                         config="table2_cross_manipulation")
  held_out, variant = args["held_out"], args["variant"]
  train_methods = splits.cross_manipulation_protocol()[held_out]
  c = paper.ffpp_experiment(f"table2_{paper.METHOD_ABBREVIATIONS[held_out]}_{variant}", variant,
                            train_methods)
  column = paper.METHOD_ABBREVIATIONS[held_out]
  c.data.test = {held_out: paper.test_set(paper.FFPP_TEST, keep_methods=(held_out,), cells=(
      f"table2:{paper.row_name(variant)}:{column}:auc",))}
  return c
