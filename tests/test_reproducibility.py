"""Two runs of the same configuration on the same machine give the same tables, to the byte.

(Across CPU kinds or library versions they need not: XLA picks other kernels. The README's
demo tables therefore carry bootstrap intervals. The inconsistency trainer's equivalent is its
SIGKILL-resume test, which compares an uninterrupted run with a resumed one bit for bit.)
"""
from fakeout_jax import evaluate, finetune
from tests import fakeout_tiny


def test_fakeout_two_runs_give_identical_scores_and_tables(tmp_path):
  root = tmp_path / "records"
  fakeout_tiny.write_records(root / "train", seed=0)
  fakeout_tiny.write_records(root / "val", num_real=3, num_fake=3, seed=1)
  outputs = []
  for run in ("a", "b"):
    config = fakeout_tiny.config(root, num_epochs=2, learning_rate=1e-3)
    finetune.train_and_evaluate(config, str(tmp_path / run))
    evaluate.evaluate(config, str(tmp_path / run), str(tmp_path / run / "eval"))
    outputs.append({name: (tmp_path / run / "eval" / name).read_bytes()
                    for name in ("scores_tiny.csv", "results.csv", "results.md")})
  assert outputs[0] == outputs[1]
  # The scores are not all equal (a degenerate model would pass the comparison trivially).
  lines = outputs[0]["scores_tiny.csv"].decode().splitlines()[1:]
  assert len({line.split(",")[7] for line in lines}) > 1
