r"""KoDF adversarial subset: mean +- std AUC over 1000 draws of 276 real + 544 fake videos.

  python -m data.prepare --dataset kodf --root /data/kodf_release --split adversarial \
      --out /data/records/kodf/adversarial
  python -m inconsistency_jax.evaluate --config inconsistency_jax/configs/kodf.py \
      --config.data.root=/data/records --workdir runs/inconsistency

The detector is the one trained by configs/default.py (VoxCeleb2 reals, FakeAVCeleb identities
excluded); the draws use a fixed seed (eval.kodf_seed) so that the numbers repeat.
"""
import ml_collections

from inconsistency_jax.configs import default


def get_config() -> ml_collections.ConfigDict:
  c = default.base()
  c.data.test = ml_collections.ConfigDict({"kodf": "kodf/adversarial"})
  c.eval.table2_set = ""
  c.eval.motion_set = ""
  c.eval.kodf_set = "kodf"
  return c
