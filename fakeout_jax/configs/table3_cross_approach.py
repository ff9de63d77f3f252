r"""FakeOut Table 3: cross-approach generalisation on FaceForensics++.

Fine-tunes on the face-swap methods (Deepfakes, FaceSwap) and tests on the reenactment methods
(Face2Face, NeuralTextures), or the other way round; FF++ test reals against the other
approach's fakes, video-level ROC-AUC over both methods together and per method.

  --config fakeout_jax/configs/table3_cross_approach.py:DIRECTION[,VARIANT]

DIRECTION: swap_to_reenactment | reenactment_to_swap.
VARIANT: x2_va (default), x2_v, x1_va, x1_v.

Data: the FF++ record sets of Table 2 (ROOT/ffpp/{train,val,test}; see
table2_cross_manipulation.py for the data.prepare commands).

  python -m fakeout_jax.finetune --config fakeout_jax/configs/table3_cross_approach.py:\
swap_to_reenactment --config.data.root=ROOT --config.init.checkpoint=mmv_tsm_resnet_x2.pkl \
      --workdir runs/t3_swap
  python -m fakeout_jax.evaluate --config fakeout_jax/configs/table3_cross_approach.py:\
swap_to_reenactment --config.data.root=ROOT --checkpoint runs/t3_swap
"""
from data.datasets import splits
from fakeout_jax.configs import paper

DIRECTIONS = {"swap_to_reenactment": "face_swap_to_reenactment",
              "reenactment_to_swap": "reenactment_to_face_swap"}
COLUMNS = {"swap_to_reenactment": "Swap -> Reenactment",
           "reenactment_to_swap": "Reenactment -> Swap"}


def get_config(arg=None):
  args = paper.parse_arg(arg, {"direction": tuple(DIRECTIONS),
                               "variant": tuple(paper.VARIANTS)},
                         {"direction": None, "variant": paper.DEFAULT_VARIANT},
                         config="table3_cross_approach")
  direction, variant = args["direction"], args["variant"]
  protocol = splits.cross_approach_protocol()[DIRECTIONS[direction]]
  c = paper.ffpp_experiment(f"table3_{direction}_{variant}", variant, protocol["train"])
  row, column = paper.row_name(variant), COLUMNS[direction]
  # FF++ fakes carry their method as category: per-category AUCs are the per-method columns.
  cells = [f"table3:{row}:{column}:auc"] + [
      f"table3:{row}:{column} ({paper.METHOD_ABBREVIATIONS[m]}):per_category/{m}/auc"
      for m in protocol["test"]]
  c.data.test = {direction: paper.test_set(paper.FFPP_TEST, keep_methods=protocol["test"],
                                           cells=cells)}
  return c
