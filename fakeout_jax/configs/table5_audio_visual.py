r"""FakeOut Table 5: the audio-visual datasets FakeAVCeleb and DeepfakeTIMIT.

The model is fine-tuned on FF++ exactly as for Table 4 (this config trains identically; a
Table 4 run can be evaluated with it) and tested, without any training on them, on

* FakeAVCeleb: the videos of 120 source identities and all their fakes (every category:
  RVFA, FVRA-*, FVFA-*; the per-category AUCs are in metrics.json);
* DeepfakeTIMIT: all 640 higher-quality videos (320 fakes and their 320 VidTIMIT originals).

  --config fakeout_jax/configs/table5_audio_visual.py:VARIANT      (x2_va default, x2_v, x1_*)

Data (record sets under --config.data.root=ROOT; ROOT/ffpp/{train,val} as in Table 4)::

  python -m data.prepare --dataset fakeavceleb --root FakeAVCeleb_v1.2 --split test \
      --out ROOT/fakeavceleb/test --option test_ids=IDS.txt
  python -m data.prepare --dataset deepfaketimit --root DeepfakeTIMIT --split test \
      --out ROOT/deepfaketimit/test --option vidtimit_root=VIDTIMIT

IDS.txt: the 120 FakeAVCeleb source ids of the authors' test split, one per line (not bundled;
without ``test_ids`` the adapter draws 120 identities with ``seed``, a different split).
VidTIMIT's real recordings are folders of JPEG frames: convert each to a video file first
(data.prepare says which), e.g. ``ffmpeg -framerate 25 -i %03d -i audio.wav sa1.mp4``, and list
them with the adapter's converted-file layout (see data/datasets/deepfaketimit.py).

  python -m fakeout_jax.evaluate --config fakeout_jax/configs/table5_audio_visual.py:x2_va \
      --config.data.root=ROOT --checkpoint runs/ffpp_x2_va --out runs/ffpp_x2_va/eval_table5
"""
from fakeout_jax.configs import paper
from fakeout_jax.configs import table4_cross_dataset


def get_config(arg=None):
  variant = table4_cross_dataset.variant_arg(arg, "table5_audio_visual")
  c = paper.ffpp_experiment(f"table5_{variant}", variant)
  row = paper.row_name(variant)
  c.data.test = {
      "fakeavceleb": paper.test_set(paper.FAKEAVCELEB, cells=(f"table5:{row}:FakeAVCeleb:auc",)),
      "deepfaketimit": paper.test_set(paper.DEEPFAKETIMIT,
                                      cells=(f"table5:{row}:DeepfakeTIMIT:auc",)),
  }
  return c
