r"""FakeOut Fig. 14: AUC against the number of clips N averaged per video (1..9).

Trained as Table 4 (this config trains identically: evaluate a Table 4 run); evaluated on the
Table 4 test sets with N clips per face track at offsets linspace(0, len - 64, N), for each N
of the sweep. The offsets change with N, so every N is a full evaluation.

  --config fakeout_jax/configs/fig14_num_clips.py:VARIANT      (x2_va default, x2_v, x1_*)

  python -m fakeout_jax.evaluate --config fakeout_jax/configs/fig14_num_clips.py:x2_va \
      --config.data.root=ROOT --checkpoint runs/ffpp_x2_va --out runs/ffpp_x2_va/eval_fig14 \
      --num-clips 1,3,5,7,9

writes sweep_num_clips.json (every metric per N and test set, and the figure's cells) and
fig14_auc_vs_num_clips.png. Without --num-clips the run fills the row of input.eval_num_clips.
Data: the Table 4 record sets (see table4_cross_dataset.py).
"""
from fakeout_jax.configs import paper
from fakeout_jax.configs import table4_cross_dataset

NUM_CLIPS = (1, 3, 5, 7, 9)


def get_config(arg=None):
  variant = table4_cross_dataset.variant_arg(arg, "fig14_num_clips")
  c = paper.ffpp_experiment(f"fig14_{variant}", variant)
  # '{num_clips}' is filled by fakeout_jax.evaluate with the N of each evaluation.
  c.data.test = paper.cross_dataset_tests("fig14:N={{num_clips}}:{column}")
  return c
