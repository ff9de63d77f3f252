"""Training the inconsistency detector: a short pmapped run, its workdir, SIGKILL-resume equality,
the NaN guard and errors before the first step."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import flax.traverse_util
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from data import workdir as workdir_lib
from inconsistency_jax import input_pipeline as ip
from inconsistency_jax import train
from tests import inconsistency_records as fixtures

NUM_STEPS = 8


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  root = tmp_path_factory.mktemp("records")
  fixtures.real_set(root / "train", identities=4, tracks_per_identity=1, num_frames=50, shards=2)
  fixtures.real_set(root / "val", identities=2, tracks_per_identity=1, num_frames=50, shards=1,
                    first_seed=5000)
  return root


def _config(root, **overrides):
  return fixtures.smoke_config(root, **{"train.num_steps": NUM_STEPS, **overrides})


def _checkpoint_arrays(workdir, step, which="latest"):
  manager = ocp.CheckpointManager(workdir / "checkpoints" / which,
                                  options=ocp.CheckpointManagerOptions(read_only=True))
  state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  return {jax.tree_util.keystr(path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_leaves_with_path(state["state"])}


def _cli(root, workdir):
  """The training command in a subprocess (it shares the session's XLA cache, tests/conftest.py)."""
  repo = pathlib.Path(__file__).resolve().parents[1]
  env = dict(os.environ, PYTHONUNBUFFERED="1",
             PYTHONPATH=str(repo), XLA_FLAGS="--xla_force_host_platform_device_count=2")
  return subprocess.Popen(
      [sys.executable, "-m", "inconsistency_jax.train",
       "--config=inconsistency_jax/configs/synthetic_tiny.py:smoke",
       f"--config.data.root={root}", f"--config.train.num_steps={NUM_STEPS}",
       f"--workdir={workdir}"],
      cwd=repo, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_training_runs_logs_and_resumes_after_sigkill_bit_for_bit(root, tmp_path):
  # Uninterrupted reference run, in this process (its compiled step is cached for the CLI runs).
  reference = tmp_path / "reference"
  config = _config(root)
  initial = train.create_train_state(config, train.create_model(config),
                                     ip.WindowSpec.from_model_config(config.model),
                                     jax.random.PRNGKey(config.train.seed))
  final = train.train_and_evaluate(config, str(reference))
  assert int(final.step) == NUM_STEPS
  lines = [json.loads(line) for line in (reference / "metrics.jsonl").read_text().splitlines()]
  train_lines = [x for x in lines if "train/loss" in x]
  assert [x["step"] for x in train_lines] == list(range(1, NUM_STEPS + 1))
  assert all(np.isfinite(x["train/loss"]) and x["train/intra_loss"] >= 0 for x in train_lines)
  assert list((reference / "tensorboard").iterdir())
  assert sorted(int(p.name) for p in (reference / "checkpoints/latest").iterdir()) == [6, 8]
  # 64-px faces: the IResNet head flattens a 4 x 4 x 64 map; Whisper's position table is frozen.
  params = flax.traverse_util.flatten_dict(final.params, sep="/")
  assert params["identity_encoder/backbone/head_dense/kernel"].shape == (4 * 4 * 64, 64)
  before = flax.traverse_util.flatten_dict(initial.params, sep="/")
  frozen = "audio_encoder/whisper/positional_embedding"
  np.testing.assert_array_equal(params[frozen], before[frozen])
  assert not np.array_equal(params["visual_encoder/backbone/stem_conv/kernel"],
                            before["visual_encoder/backbone/stem_conv/kernel"])

  # The same run from the command line, killed with SIGKILL after its first checkpoint ...
  resumed = tmp_path / "resumed"
  process = _cli(root, resumed)
  first = resumed / "checkpoints" / "latest" / "2"
  deadline = time.time() + 240
  while not first.is_dir() and process.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  assert first.is_dir(), f"no checkpoint appeared; output:\n{process.communicate()[0][-3000:]}"
  process.send_signal(signal.SIGKILL)
  process.communicate()
  steps = sorted(int(p.name) for p in (resumed / "checkpoints/latest").iterdir()
                 if p.name.isdigit())
  assert steps and steps[-1] < NUM_STEPS, f"the run finished before it was killed: {steps}"
  # ... then resumed by running the same command again.
  process = _cli(root, resumed)
  output = process.communicate(timeout=600)[0]
  assert process.returncode == 0, output[-3000:]
  assert f"resumed from step {steps[-1]}" in output
  a, b = _checkpoint_arrays(reference, NUM_STEPS), _checkpoint_arrays(resumed, NUM_STEPS)
  assert a.keys() == b.keys()
  assert len(a) > 100
  different = [k for k in a if not np.array_equal(a[k], b[k])]
  assert not different, f"resumed run differs from the uninterrupted one in {different[:5]}"


def test_the_nan_guard_runs_when_metrics_are_fetched(tmp_path):
  work = workdir_lib.Workdir(tmp_path / "guard", fixtures.smoke_config(tmp_path))
  buffer = train._MetricBuffer(work)  # noqa: SLF001
  replicated = lambda loss: {"loss": np.array([loss, loss]), "intra_loss": np.zeros(2)}
  buffer.add(1, replicated(0.5))
  assert buffer.flush()["loss"] == 0.5
  buffer.add(2, replicated(0.4))
  buffer.add(3, replicated(np.nan))
  with pytest.raises(workdir_lib.NonFiniteLossError, match="loss became nan at step 3"):
    buffer.flush()
  work.close()


@pytest.mark.slow
def test_nan_loss_stops_before_anything_is_saved(root, tmp_path, monkeypatch):
  monkeypatch.setattr(ip, "resample_to_whisper",
                      lambda audio: np.full(len(audio) * 160 // 441 + 1, np.nan, np.float32))
  with pytest.raises(workdir_lib.NonFiniteLossError, match="before any checkpoint"):
    train.train_and_evaluate(_config(root), str(tmp_path / "nan"))
  assert not list((tmp_path / "nan" / "checkpoints" / "latest").glob("[0-9]*"))


def test_a_batch_that_cannot_hold_n_identities_fails_at_start(root, tmp_path):
  config = _config(root, **{"train.identities_per_batch": 6})
  with pytest.raises(ip.InputError, match="hold 4 identities .* needs 6 distinct"):
    train.train_and_evaluate(config, str(tmp_path / "too_few"))
  odd = _config(root, **{"train.identities_per_batch": 3})
  with pytest.raises(ip.InputError, match="must split evenly over 1 host"):
    train.train_and_evaluate(odd, str(tmp_path / "odd"))


def test_excluded_identities_are_not_trained_on(root, tmp_path):
  exclusion = tmp_path / "fakeavceleb_ids.txt"
  exclusion.write_text("id000\nid001\nid002\n")
  config = _config(root, **{"input.exclude_identities": str(exclusion)})
  with pytest.raises(ip.InputError, match=r"hold 1 identities .*'excluded identity': 3"):
    train.train_and_evaluate(config, str(tmp_path / "excluded"))


@pytest.mark.slow
def test_validation_loss_picks_the_best_checkpoint(root, tmp_path):
  workdir = tmp_path / "with_val"
  train.train_and_evaluate(_config(root, **{"data.val": "val"}), str(workdir))
  lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  val = {x["step"]: x["val/loss"] for x in lines if "val/loss" in x}
  assert sorted(val) == [2, 4, 6, 8] and all(np.isfinite(v) for v in val.values())
  best = [int(p.name) for p in (workdir / "checkpoints/best").iterdir() if p.name.isdigit()]
  assert best == [min(val, key=val.get)]


def test_every_experiment_config_loads_and_names_its_sets():
  import importlib
  import pkgutil
  from inconsistency_jax import configs
  names = [m.name for m in pkgutil.iter_modules(configs.__path__) if m.name != "model"]
  assert {"default", "synthetic_tiny", "table3_compression", "kodf"} <= set(names)
  for name in names:
    config = importlib.import_module(f"inconsistency_jax.configs.{name}").get_config()
    ev = config.eval
    named = [ev.table2_set, ev.kodf_set, ev.motion_set, *ev.compression_sets.values()]
    assert all(not n or n in config.data.test for n in named), (name, named)
    assert config.train.identities_per_batch >= 2 and config.model.bn_axis_name == "batch"
