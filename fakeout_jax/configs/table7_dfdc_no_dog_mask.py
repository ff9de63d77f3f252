r"""FakeOut Table 7: DFDC without the dog-mask distractor videos.

The DFDC test set holds videos with a dog-face filter over the person (FakeOut: 215, labelled
real). Table 4 keeps them; this table reports DFDC and its filtered subset without them. The
model is the one of Table 4 (this config trains identically), so evaluate a Table 4 run.

The distractors are left out at evaluation time: data.datasets.dfdc gives them the category
``dog_mask`` when the record set was prepared with their id list, and ``drop_categories`` drops
those videos after scoring. A record set without any such video (prepared without
``dog_mask_list``) is reported as failed, with that reason, and fills no cell (the command exits
with status 1), rather than report the full set under this name.

  --config fakeout_jax/configs/table7_dfdc_no_dog_mask.py:VARIANT      (x2_va default, ...)

Data: ROOT/dfdc/test and ROOT/dfdc_filtered/test exactly as in Table 4 (with
``--option dog_mask_list=DOGS.txt``); nothing else to prepare.

  python -m fakeout_jax.evaluate --config fakeout_jax/configs/table7_dfdc_no_dog_mask.py:x2_va \
      --config.data.root=ROOT --checkpoint runs/ffpp_x2_va --out runs/ffpp_x2_va/eval_table7
"""
from fakeout_jax.configs import paper
from fakeout_jax.configs import table4_cross_dataset


def get_config(arg=None):
  variant = table4_cross_dataset.variant_arg(arg, "table7_dfdc_no_dog_mask")
  c = paper.ffpp_experiment(f"table7_{variant}", variant)
  row = paper.row_name(variant)
  c.data.test = {
      "dfdc_no_dog_mask": paper.test_set(paper.DFDC, drop_categories=(paper.DOG_MASK_CATEGORY,),
                                         cells=(f"table7:{row}:DFDC:auc",)),
      "dfdc_filtered_no_dog_mask": paper.test_set(
          paper.DFDC_FILTERED, drop_categories=(paper.DOG_MASK_CATEGORY,),
          cells=(f"table7:{row}:DFDC filtered:auc",)),
  }
  return c
