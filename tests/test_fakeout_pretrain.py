"""fakeout_jax.pretrain: MMV's NCE over the global batch, a run that learns, the hand-over to
fine-tuning (init.mode='pretrained'), bad configs, and exact resume after SIGKILL (slow)."""
import functools
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fakeout_jax import finetune, models, pretrain, state
from tests import fakeout_tiny

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _reference_nce(video, audio, temperature):
  """Numpy: symmetric InfoNCE over cosine scores, every other clip a negative."""
  v = video / np.linalg.norm(video, axis=1, keepdims=True)
  a = audio / np.linalg.norm(audio, axis=1, keepdims=True)
  scores = v @ a.T / temperature

  def cross_entropy(s):
    s = s - s.max(axis=1, keepdims=True)
    return -(np.diag(s) - np.log(np.exp(s).sum(axis=1)))
  return 0.5 * (cross_entropy(scores) + cross_entropy(scores.T)).mean()


def test_nce_matches_a_numpy_reference():
  rng = np.random.default_rng(0)
  video, audio = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
  loss, metrics = pretrain.nce_loss(jnp.asarray(video), jnp.asarray(audio), 0.07, True,
                                    axis_name=None)
  np.testing.assert_allclose(float(loss), _reference_nce(video, audio, 0.07), rtol=1e-5)
  matched, _ = pretrain.nce_loss(jnp.asarray(video), jnp.asarray(video), 0.07, True,
                                 axis_name=None)
  assert float(matched) < float(loss) and float(metrics["nce_loss"]) == float(loss)


def test_same_track_negatives_are_the_other_clips_of_the_group_only():
  """negatives='same_track' (group_size K): each clip's softmax runs over the K clips of its own
  track, on every device of a pmap as on one; a perfect voice/face match across tracks earns
  nothing, only the timing within a track counts."""
  rng = np.random.default_rng(2)
  video, audio = rng.normal(size=(8, 5)), rng.normal(size=(8, 5))
  loss, metrics = pretrain.nce_loss(jnp.asarray(video), jnp.asarray(audio), 0.07, True,
                                    axis_name=None, group_size=4)
  per_group = [_reference_nce(video[g:g + 4], audio[g:g + 4], 0.07) for g in (0, 4)]
  np.testing.assert_allclose(float(loss), np.mean(per_group), rtol=1e-5)
  assert abs(float(loss) - _reference_nce(video, audio, 0.07)) > 1e-2
  assert np.isfinite(float(metrics["mean_similarity"]))
  split = lambda x: jnp.asarray(x).reshape((2, 4) + x.shape[1:])
  on_devices = jax.pmap(
      lambda v, a: jax.lax.pmean(pretrain.nce_loss(v, a, 0.07, True, group_size=4)[0], "batch"),
      axis_name="batch")(split(video), split(audio))
  np.testing.assert_allclose(float(on_devices[0]), float(loss), rtol=1e-5)
  # Groups of 2: four separate softmaxes over 2 clips each.
  loss2, _ = pretrain.nce_loss(jnp.asarray(video), jnp.asarray(audio), 0.07, True,
                               axis_name=None, group_size=2)
  np.testing.assert_allclose(float(loss2), np.mean(
      [_reference_nce(video[g:g + 2], audio[g:g + 2], 0.07) for g in range(0, 8, 2)]),
      rtol=1e-5)


def test_centering_within_track_scores_only_what_differs_between_a_tracks_clips():
  """center=True: each track's mean embedding is subtracted (per modality) before the cosine,
  so a common component of a track (its face, its voice) cannot mask the small differences
  between its clips; on one device and across a pmap alike."""
  rng = np.random.default_rng(3)
  video, audio = rng.normal(size=(8, 5)), rng.normal(size=(8, 5))

  def centered(x):
    return np.concatenate([x[g:g + 4] - x[g:g + 4].mean(0) for g in (0, 4)])
  loss, _ = pretrain.nce_loss(jnp.asarray(video), jnp.asarray(audio), 0.1, True,
                              axis_name=None, group_size=4, center=True)
  reference = np.mean([_reference_nce(centered(video)[g:g + 4], centered(audio)[g:g + 4], 0.1)
                       for g in (0, 4)])
  np.testing.assert_allclose(float(loss), reference, rtol=1e-5)
  # A large per-track offset (identity) leaves the centred loss unchanged, not the plain one.
  offset = np.repeat(rng.normal(size=(2, 5)) * 50, 4, axis=0)
  shifted, _ = pretrain.nce_loss(jnp.asarray(video + offset), jnp.asarray(audio + offset), 0.1,
                                 True, axis_name=None, group_size=4, center=True)
  np.testing.assert_allclose(float(shifted), float(loss), rtol=1e-4)
  plain, _ = pretrain.nce_loss(jnp.asarray(video + offset), jnp.asarray(audio + offset), 0.1,
                               True, axis_name=None, group_size=4)
  assert abs(float(plain) - np.log(4)) < 0.05 < abs(float(loss) - np.log(4))
  split = lambda x: jnp.asarray(x).reshape((2, 4) + x.shape[1:])
  on_devices = jax.pmap(lambda v, a: jax.lax.pmean(
      pretrain.nce_loss(v, a, 0.1, True, group_size=4, center=True)[0], "batch"),
      axis_name="batch")(split(video), split(audio))
  np.testing.assert_allclose(float(on_devices[0]), float(loss), rtol=1e-5)
  with pytest.raises(ValueError, match="group_size"):
    pretrain.nce_loss(jnp.asarray(video), jnp.asarray(audio), 0.1, True, axis_name=None,
                      center=True)


def test_negatives_come_from_the_global_batch_and_gradients_match():
  """On 2 devices, the pmean of per-device losses and gradients equals the loss and gradient of
  the whole batch on one device: every clip's negatives include the other device's clips."""
  assert jax.local_device_count() >= 2
  rng = np.random.default_rng(1)
  x_video, x_audio = rng.normal(size=(8, 6)), rng.normal(size=(8, 6))
  weights = {"v": jnp.asarray(rng.normal(size=(6, 4))), "a": jnp.asarray(rng.normal(size=(6, 4)))}

  def loss_of(w, xv, xa, axis_name):
    return pretrain.nce_loss(xv @ w["v"], xa @ w["a"], 0.07, True, axis_name=axis_name)[0]

  whole_loss, whole_grad = jax.value_and_grad(loss_of)(weights, x_video, x_audio, None)

  def device_step(w, xv, xa):
    loss, grad = jax.value_and_grad(loss_of)(w, xv, xa, "batch")
    return jax.lax.pmean(loss, "batch"), jax.lax.pmean(grad, "batch")
  split = lambda x: x.reshape((2, 4) + x.shape[1:])
  loss, grad = jax.pmap(device_step, axis_name="batch", in_axes=(None, 0, 0))(
      weights, split(x_video), split(x_audio))
  np.testing.assert_allclose(np.asarray(loss[0]), float(whole_loss), rtol=1e-5)
  for key in weights:
    np.testing.assert_allclose(np.asarray(grad[key][0]), np.asarray(whole_grad[key]),
                               rtol=1e-4, atol=1e-6)
  # Per-device negatives only (each device's own 4 clips) would give a different loss.
  local = np.mean([_reference_nce(np.asarray(x @ weights["v"]), np.asarray(y @ weights["a"]),
                                  0.07) for x, y in zip(split(x_video), split(x_audio))])
  assert abs(local - float(whole_loss)) > 1e-3


@pytest.fixture(scope="module")
def record_root(tmp_path_factory):
  root = tmp_path_factory.mktemp("records")
  fakeout_tiny.write_av_records(root / "train", num_tracks=8, seed=0)
  fakeout_tiny.write_records(root / "train", num_real=2, num_fake=2, seed=0)  # fakes: skipped
  fakeout_tiny.write_av_records(root / "val", num_tracks=4, seed=1)
  return root


def _config(record_root, **train):
  return fakeout_tiny.pretrain_config(record_root, **train)


@pytest.fixture(scope="module")
def pretrained_run(record_root, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("pretrain") / "run"
  config = _config(record_root)
  final = pretrain.pretrain(config, str(workdir))
  return config, workdir, final


@pytest.mark.slow  # one pre-training run: minutes of compiling on 2 cores
def test_pretraining_on_reals_learns_and_validates(pretrained_run):
  config, workdir, final = pretrained_run
  assert int(final.step) == 5 * (10 // 4)   # reals only: 10 tracks, batches of 4, 5 epochs
  lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  losses = [line["train/nce_loss"] for line in lines if "train/nce_loss" in line]
  assert np.isfinite(losses).all() and np.mean(losses[-2:]) < np.mean(losses[:2])
  assert any("val_loss" in line for line in lines)
  assert (workdir / "checkpoints" / "best").is_dir()
  # The classifier is not MMV's: pre-training leaves it where initialisation put it.
  fresh = state.fresh_variables(config, models.create_model(config.model),
                                jax.random.PRNGKey(config.train.seed))
  for x, y in zip(jax.tree_util.tree_leaves(fresh["params"]["classifier"]),
                  jax.tree_util.tree_leaves(final.params["classifier"])):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.slow  # one pre-training run: minutes of compiling on 2 cores
def test_finetune_starts_from_the_pretrained_backbone(pretrained_run, record_root):
  _, workdir, _ = pretrained_run
  loaded = state.pretrained_backbone(str(workdir))
  config = fakeout_tiny.config(record_root)
  config.init.mode, config.init.checkpoint = "pretrained", str(workdir)
  finetune.check_config(config)
  model = models.create_model(config.model)
  start = state.initial_variables(config, model, jax.random.PRNGKey(5))
  fresh = state.fresh_variables(config, model, jax.random.PRNGKey(5))
  for part in ("video_encoder", "audio_encoder", "embedding_heads"):
    for x, y in zip(jax.tree_util.tree_leaves(loaded["params"][part]),
                    jax.tree_util.tree_leaves(start["params"][part])):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  for kind in ("batch_stats",):
    for x, y in zip(jax.tree_util.tree_leaves(loaded[kind]),
                    jax.tree_util.tree_leaves(start[kind])):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  for x, y in zip(jax.tree_util.tree_leaves(fresh["params"]["classifier"]),
                  jax.tree_util.tree_leaves(start["params"]["classifier"])):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  # evaluate / predict read a pre-training workdir too (for its embeddings' agreement).
  evaluated = state.load_variables(config, str(workdir))
  for x, y in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(evaluated)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_bad_configs_fail_with_a_clear_error(record_root, tmp_path):
  config = _config(record_root, batch_size=4)
  config.pretrain.text_loss_weight = 1.0
  with pytest.raises(state.ConfigError, match="MIL-NCE"):
    pretrain.pretrain(config, str(tmp_path / "a"))
  config = _config(record_root, batch_size=4)
  config.pretrain.negatives = "same_track"
  config.input.clips_per_track = 3
  with pytest.raises(state.ConfigError, match="clips_per_track >= 2 dividing"):
    pretrain.pretrain(config, str(tmp_path / "b"))
  config.pretrain.negatives = "others"
  with pytest.raises(state.ConfigError, match="'batch' or 'same_track'"):
    pretrain.pretrain(config, str(tmp_path / "c"))
  config = _config(record_root, batch_size=4)
  config.pretrain.center_within_track = True   # with the default whole-batch negatives
  with pytest.raises(state.ConfigError, match="center_within_track needs"):
    pretrain.pretrain(config, str(tmp_path / "d"))
  config = fakeout_tiny.config(record_root)
  config.init.mode, config.init.checkpoint = "pretrained", str(tmp_path)
  with pytest.raises(state.ConfigError, match="pretrain` workdir"):
    finetune.check_config(config)


def _pretrain_command(record_root, workdir):
  return [sys.executable, "-m", "fakeout_jax.pretrain",
          "--config", os.path.join(REPO, "tests", "fakeout_tiny_pretrain_config.py"),
          f"--config.data.root={record_root}", f"--workdir={workdir}"]


@pytest.mark.slow
def test_resume_after_sigkill_ends_with_the_same_parameters(record_root, tmp_path):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             PYTHONPATH=REPO)
  straight = tmp_path / "straight"
  subprocess.run(_pretrain_command(record_root, straight), env=env, check=True,
                 capture_output=True, cwd=REPO)
  killed = tmp_path / "killed"
  process = subprocess.Popen(_pretrain_command(record_root, killed), env=env, cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not (killed / "checkpoints" / "latest" / "2").is_dir():
    assert process.poll() is None and time.time() < deadline, "no mid-run checkpoint appeared"
    time.sleep(0.2)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert not (killed / "checkpoints" / "latest" / "10").exists(), "killed after the end"
  subprocess.run(_pretrain_command(record_root, killed), env=env, check=True,
                 capture_output=True, cwd=REPO)
  restore = functools.partial(_latest_variables, record_root)
  for x, y in zip(jax.tree_util.tree_leaves(restore(straight)),
                  jax.tree_util.tree_leaves(restore(killed))):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _latest_variables(record_root, workdir):
  from data import workdir as workdir_lib
  run = workdir_lib.Workdir(workdir, _config(record_root), force=True, write_config=False)
  restored, _ = run.restore(None)
  run.close()
  return {"params": restored["params"], "batch_stats": restored["batch_stats"],
          "opt_state": restored["opt_state"]}
