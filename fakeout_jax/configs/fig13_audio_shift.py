r"""FakeOut Fig. 13: the score of real videos when their audio is shifted in time.

Trained as Table 4 (V&A variants; this config trains identically: evaluate a Table 4 run).
Every evaluation audio window is moved by S seconds (input.eval_audio_shift_seconds, wrapping
around the track's audio) for each S of the sweep; the figure plots the mean fake probability
of the REAL videos that carry audio, and the AUC, against S. A model that listens to the
lip-audio agreement should find shifted real videos more fake.

The audio windows are cut at their clips' starts (input.eval_audio_alignment='aligned'): with
the released placement (an own linspace over the audio) the windows drift up to ~1.1 s away
from their clips even without a shift, which would blur the curve.

  --config fakeout_jax/configs/fig13_audio_shift.py:VARIANT      (x2_va default, x1_va)

  python -m fakeout_jax.evaluate --config fakeout_jax/configs/fig13_audio_shift.py:x2_va \
      --config.data.root=ROOT --checkpoint runs/ffpp_x2_va --out runs/ffpp_x2_va/eval_fig13 \
      --audio-shifts=-2,-1,-0.5,-0.2,0,0.2,0.5,1,2

writes sweep_audio_shift.json and fig13_score_vs_audio_shift.png. Data: ROOT/ffpp/test (FF++
with the authors' audio enrichment, see Table 2: only the verified sequences have audio) and
ROOT/dfdc_filtered/test (native audio), as for Tables 4 and 6.
"""
from fakeout_jax.configs import paper

AUDIO_SHIFTS = (-2.0, -1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0, 2.0)


def get_config(arg=None):
  variant = paper.parse_arg(arg, {"variant": ("x2_va", "x1_va")}, {"variant": "x2_va"},
                            config="fig13_audio_shift")["variant"]
  c = paper.ffpp_experiment(f"fig13_{variant}", variant)
  c.input.eval_audio_alignment = "aligned"
  row = "{audio_shift:+.2f} s"  # filled by fakeout_jax.evaluate with each shift
  c.data.test = {
      "ffpp": paper.test_set(paper.FFPP_TEST, cells=(
          f"fig13:{row}:FF++ real score:scores/real_with_audio/mean",
          f"fig13:{row}:FF++ AUC:auc")),
      "dfdc_filtered": paper.test_set(paper.DFDC_FILTERED, cells=(
          f"fig13:{row}:DFDC filtered real score:scores/real_with_audio/mean",
          f"fig13:{row}:DFDC filtered AUC:auc")),
  }
  return c
