"""A corrupt test shard given to either detector's evaluate command (issue 19, case 3): without
``input.skip_corrupt_records`` the command refuses, naming the file; with it, it exits 0 and
says how many records it skipped in its tables, its metrics and its log."""
import json
import pathlib

import jax
import pytest

from fakeout_jax import checkpoints, models, state
from tests import fakeout_tiny
from tests import inconsistency_records as fixtures
from tests.cli_assert import assert_clean_exit, run_cli

SKIP = "--config.input.skip_corrupt_records=True"


def _truncate(shard):
  """Cut the shard's last record short: the records before it stay readable."""
  shard.write_bytes(shard.read_bytes()[:-200])
  return shard


@pytest.mark.slow  # two evaluate commands end to end (~50 s); the reader's rule is fast-tested
def test_fakeout_evaluate_refuses_or_skips_a_truncated_test_shard(tmp_path):
  root = tmp_path / "records"
  fakeout_tiny.write_records(root / "val", num_real=2, num_fake=2)  # the tiny config's test set
  damaged = _truncate(sorted((root / "val").glob("*.tfrecord"))[1])
  config = fakeout_tiny.config(root)
  variables = state.fresh_variables(config, models.create_model(config.model),
                                    jax.random.PRNGKey(0))
  checkpoint = tmp_path / "converted"
  checkpoints.save_variables(checkpoint, jax.device_get(variables))
  args = ["--config", "tests/fakeout_tiny_config.py", f"--config.data.root={root}",
          "--checkpoint", checkpoint]

  refused = run_cli("fakeout_jax.evaluate", *args, "--out", tmp_path / "refused")
  assert_clean_exit(refused.returncode, refused.stderr, 2, str(damaged), "skip_corrupt_records")
  assert not (tmp_path / "refused" / "results.md").exists()

  out = tmp_path / "skipped"
  result = run_cli("fakeout_jax.evaluate", *args, SKIP, "--out", out)
  assert_clean_exit(result.returncode, result.stderr, 0)
  metrics = json.loads((out / "metrics.json").read_text())
  assert metrics["records_skipped"] == 1
  assert metrics["results"]["tiny"]["num_real"] + metrics["results"]["tiny"]["num_fake"] == 3
  assert "Scored without 1 corrupt record(s)" in (out / "results.md").read_text()
  assert "Scored without 1 corrupt record(s)" in result.stderr  # the log


@pytest.mark.slow  # two evaluate commands end to end (~50 s); the reader's rule is fast-tested
def test_inconsistency_evaluate_refuses_or_skips_a_truncated_test_shard(tmp_path):
  root = tmp_path / "records"
  tracks = [(fixtures.track_arrays(i, 70, seed=50 + i),
             fixtures.meta(f"v{i}", f"id{i}", label=i % 2, category="RVFA" if i % 2 else "real",
                           split="test"))
            for i in range(6)]
  shards = fixtures.write_shards(root / "test", tracks, shards=2, prefix="test")
  damaged = _truncate(pathlib.Path(shards[1]))
  config = fixtures.smoke_config(root)
  config.data.test = {"synthetic": "test"}
  workdir = fixtures.untrained_workdir(tmp_path / "run", config)
  args = ["--config", "inconsistency_jax/configs/synthetic_tiny.py:smoke",
          f"--config.data.root={root}", "--workdir", workdir, "--sets", "synthetic"]

  refused = run_cli("inconsistency_jax.evaluate", *args)
  assert_clean_exit(refused.returncode, refused.stderr, 2, str(damaged), "skip_corrupt_records")
  out = workdir / "eval"
  assert not list(out.glob("*.md"))

  result = run_cli("inconsistency_jax.evaluate", *args, SKIP)
  assert_clean_exit(result.returncode, result.stderr, 0)
  summary = json.loads((out / "summary.json").read_text())
  assert summary["records_skipped"] == 1
  assert summary["sets"]["synthetic"]["tracks"] == 5
  assert "Scored without 1 corrupt record(s)" in (out / "table2.md").read_text()
  assert "1 corrupt record(s) skipped" in result.stderr  # the log
