r"""FakeOut Table 4: cross-dataset generalisation, trained on FaceForensics++.

Fine-tunes on FF++ c23 (all four methods) and tests on FaceShifter (FSh), DeeperForensics (DFo),
the DFDC public test set and its filtered single-person subset: video-level ROC-AUC. One run
per model variant fills one row.

  --config fakeout_jax/configs/table4_cross_dataset.py:VARIANT

VARIANT: x1_v (TSM-50, video), x1_va (TSM-50, video and audio), x2_v, x2_va (TSM-50x2; default,
FakeOut's released model). x1 runs start from mmv_tsm_resnet_x1.pkl, x2 from mmv_tsm_resnet_x2.pkl.

The same fine-tuned run serves Tables 5, 6 and 7 and Fig. 14 (their configs train identically):
evaluate its workdir with their configs, each into its own --out folder.

Data (record sets under --config.data.root=ROOT; ROOT/ffpp/{train,val} as in Table 2, with
their audio plans; FSh and DFo get the FF++ targets' YouTube audio the same way)::

  python -m data.datasets.enrichment --dataset faceshifter --root FFPP --split test \
      --option protocol=fakeout --out ROOT/faceshifter_test.audio_plan.csv
  python -m data.prepare --dataset faceshifter --root FFPP --split test \
      --out ROOT/faceshifter/test --option protocol=fakeout \
      --audio-plan ROOT/faceshifter_test.audio_plan.csv
  python -m data.datasets.enrichment --dataset deeperforensics --root DeeperForensics-1.0 \
      --ffpp-root FFPP --split test --out ROOT/deeperforensics_test.audio_plan.csv
  python -m data.prepare --dataset deeperforensics --root DeeperForensics-1.0 --split test \
      --out ROOT/deeperforensics/test --option ffpp_root=FFPP \
      --audio-plan ROOT/deeperforensics_test.audio_plan.csv
  python -m data.prepare --dataset dfdc --root DFDC --split test --out ROOT/dfdc/test \
      --option dog_mask_list=DOGS.txt
  python -m data.prepare --dataset dfdc --root DFDC --split test --out ROOT/dfdc_filtered/test \
      --option subset=filtered --option dog_mask_list=DOGS.txt

``subset=filtered`` keeps the ids of the authors' bundled DFDC_filtered_test.txt (single person).
DOGS.txt lists the DFDC dog-mask distractor videos (FakeOut: 215, labelled real, kept in this
table; Table 7 leaves them out). The list is not bundled: without it the distractors keep DFDC's
own labels and the DFDC columns differ from the paper's protocol.

  python -m fakeout_jax.finetune --config fakeout_jax/configs/table4_cross_dataset.py:x2_va \
      --config.data.root=ROOT --config.init.checkpoint=mmv_tsm_resnet_x2.pkl \
      --workdir runs/ffpp_x2_va
  python -m fakeout_jax.evaluate --config fakeout_jax/configs/table4_cross_dataset.py:x2_va \
      --config.data.root=ROOT --checkpoint runs/ffpp_x2_va --out runs/ffpp_x2_va/eval_table4
"""
from fakeout_jax.configs import paper


def variant_arg(arg, config: str) -> str:
  return paper.parse_arg(arg, {"variant": tuple(paper.VARIANTS)},
                         {"variant": paper.DEFAULT_VARIANT}, config=config)["variant"]


def get_config(arg=None):
  variant = variant_arg(arg, "table4_cross_dataset")
  c = paper.ffpp_experiment(f"table4_{variant}", variant)
  c.data.test = paper.cross_dataset_tests(f"table4:{paper.row_name(variant)}:{{column}}")
  return c
