r"""Table 3: the FakeAVCeleb test videos re-encoded at two lower qualities.

  for q in hq lq; do
    python -m data.reencode --root /data/FakeAVCeleb_v1.2 --out /data/FakeAVCeleb_v1.2_$q \
        --quality $q
    python -m data.prepare --dataset fakeavceleb --root /data/FakeAVCeleb_v1.2_$q --split all \
        --out /data/records/fakeavceleb_$q/all
  done
  python -m inconsistency_jax.evaluate \
      --config inconsistency_jax/configs/table3_compression.py \
      --config.data.root=/data/records --workdir runs/inconsistency

HQ: H.264 CRF 23 with the original audio; LQ: H.264 CRF 40 with the audio at 16 kHz. The table
reports AUC and AP of the paper's five fake categories against the real videos, per quality
(RAW = the original files), for Intra, Cross and Intra+Cross. Training is that of
configs/default.py (the same workdir).
"""
import ml_collections

from inconsistency_jax.configs import default


def get_config() -> ml_collections.ConfigDict:
  c = default.base()
  c.data.test = ml_collections.ConfigDict({
      "fakeavceleb": "fakeavceleb/all",
      "fakeavceleb_hq": "fakeavceleb_hq/all",
      "fakeavceleb_lq": "fakeavceleb_lq/all"})
  c.eval.compression_sets = ml_collections.ConfigDict({"HQ": "fakeavceleb_hq",
                                                       "LQ": "fakeavceleb_lq"})
  c.eval.motion_set = ""
  return c
