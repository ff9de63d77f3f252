"""Numerical parity of the Flax FakeOut with the original network (the Haiku oracle).

Random weights everywhere (norm scales and offsets, biases, moving statistics and counters
too), written as an original-format pickle in the 2020 legacy form, read and converted by
fakeout_jax.checkpoints, then both networks run on the same inputs. Tolerance: max |Flax -
Haiku| <= 1e-4 x max |Haiku| for every output, statistic and gradient.
"""
import jax
import numpy as np
import optax
import pytest

from fakeout_jax import checkpoints
from fakeout_jax import models
from fakeout_jax.configs import model as model_config
from tests import fakeout_legacy_pickles as legacy
from tests import mmv_haiku_reference as reference

RELATIVE_TOLERANCE = 1e-4
EMBEDDINGS = {"vid_embd": ("toaud", "totxt"), "aud_embd": ("tovid", "totxt"),
              "txt_embd": ("tovid", "toaud")}


def assert_close(actual, expected, what):
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
  scale = float(np.max(np.abs(expected))) if expected.size else 0.0
  error = float(np.max(np.abs(actual.astype(np.float64) - expected))) if expected.size else 0.0
  assert error <= RELATIVE_TOLERANCE * scale, (
      f"{what}: max abs difference {error:.3g} > {RELATIVE_TOLERANCE} x scale {scale:.3g}")


def _inputs(seed, batch, frames, size, audio_frames, leading=()):
  rng = np.random.default_rng(seed)
  video = rng.uniform(0, 1, leading + (batch, frames, size, size, 3)).astype(np.float32)
  audio = (rng.standard_normal(leading + (batch, audio_frames, 80, 1)) * 10 - 40).astype(
      np.float32)
  words = rng.integers(0, reference.VOCABULARY, leading + (batch, 16)).astype(np.int32)
  labels = rng.integers(0, 2, leading + (batch,)).astype(np.int32)
  return video, audio, words, labels


def _flax_model(backbone, use_text, **overrides):
  config = model_config.get_config(backbone)
  config.use_text = use_text
  return models.create_model(config, **overrides)


def _convert(checkpoint, model, video, audio, words):
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), video, audio,
                                             words if model.use_text else None, train=False))
  variables, report = checkpoints.convert(checkpoint, shapes)
  assert report.ok and not report.initialised
  return variables


def _compare_outputs(flax_out, haiku_out, with_text, where=""):
  for name in ("vid_repr", "aud_repr", "logits"):
    assert_close(flax_out[name], haiku_out[name], f"{where}{name}")
  for group, keys in EMBEDDINGS.items():
    if group == "txt_embd" and not with_text:
      continue
    for key in keys:
      assert_close(flax_out[group][key], haiku_out[group][key], f"{where}{group}[{key}]")


def _compare_with_haiku_tree(flax_tree, haiku_tree, collection, what):
  """Every Flax leaf against its Haiku entry (via the converter's name rules)."""
  count = 0
  for path, value in checkpoints._flatten(flax_tree):  # pylint: disable=protected-access
    _, module, name = checkpoints.haiku_key(collection, path)
    expected = np.asarray(haiku_tree[module][name])
    value = np.asarray(value).reshape(expected.shape)
    if name == "counter":
      np.testing.assert_array_equal(value, expected, err_msg=f"{what} {module}:{name}")
    else:
      assert_close(value, expected, f"{what} {module}:{name}")
    count += 1
  return count


@pytest.fixture(scope="module")
def x1_checkpoint(tmp_path_factory):
  """Random tsm_resnet_x1 weights in the 2020 form (FlatMapping with a PyTreeDef, DeviceArray
  objects), read back through the restricted unpickler."""
  original = reference.random_checkpoint(width_mult=1, seed=0)
  path = tmp_path_factory.mktemp("parity") / "mmv_tsm_resnet_x1.pkl"
  path.write_bytes(legacy.dumps(original, "flat_treedef", "object", protocol=4))
  loaded = checkpoints.load_haiku_checkpoint(path)
  stem = "text_audio_video/visual_module/~/TSMResNetV2/tsm_resnet_stem"
  np.testing.assert_array_equal(loaded["params"][stem]["w"], original["params"][stem]["w"])
  return loaded


def test_eval_parity_x1_with_text(x1_checkpoint):
  video, audio, words, _ = _inputs(1, batch=2, frames=4, size=32, audio_frames=40)
  haiku = reference.transformed(width_mult=1, axis_name=None)
  haiku_out, _ = jax.jit(lambda p, s: haiku.apply(p, s, None, video, audio, words, False))(
      x1_checkpoint["params"], x1_checkpoint["state"])
  model = _flax_model("tsm_resnet_x1", use_text=True)
  variables = _convert(x1_checkpoint, model, video, audio, words)
  flax_out = jax.jit(lambda v: model.apply(v, video, audio, words, train=False))(variables)
  _compare_outputs(flax_out, haiku_out, with_text=True)
  assert float(np.std(haiku_out["logits"])) > 1e-3  # the comparison is not between constants


def _pmap_train_step(x1_checkpoint, with_gradients, video, audio, words, labels):
  """One training step of both networks on 2 devices (Haiku axis 'i', Flax axis 'batch')."""
  haiku = reference.transformed(width_mult=1)

  def haiku_step(params, state, video, audio, words, labels):
    def loss_fn(params):
      out, new_state = haiku.apply(params, state, None, video, audio, words, True)
      loss = optax.softmax_cross_entropy_with_integer_labels(out["logits"], labels).mean()
      return loss, (out, new_state)
    if not with_gradients:
      return loss_fn(params)[1] + (None,)
    (_, (out, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return out, new_state, jax.lax.pmean(grads, reference.CROSS_REPLICA_AXIS)

  model = _flax_model("tsm_resnet_x1", use_text=True, axis_name="batch")
  variables = _convert(x1_checkpoint, model, video[0], audio[0], words[0])

  def flax_step(variables, video, audio, words, labels):
    def loss_fn(params):
      out, updates = model.apply({"params": params, "batch_stats": variables["batch_stats"]},
                                 video, audio, words, train=True, mutable=["batch_stats"])
      loss = optax.softmax_cross_entropy_with_integer_labels(out["logits"], labels).mean()
      return loss, (out, updates["batch_stats"])
    if not with_gradients:
      return loss_fn(variables["params"])[1] + (None,)
    (_, (out, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])
    return out, stats, jax.lax.pmean(grads, "batch")

  haiku_results = jax.pmap(haiku_step, axis_name=reference.CROSS_REPLICA_AXIS,
                           in_axes=(None, None, 0, 0, 0, 0))(
      x1_checkpoint["params"], x1_checkpoint["state"], video, audio, words, labels)
  flax_results = jax.pmap(flax_step, axis_name="batch", in_axes=(None, 0, 0, 0, 0))(
      variables, video, audio, words, labels)
  return variables, haiku_results, flax_results


def _device(tree, device):
  return jax.tree_util.tree_map(lambda x: np.asarray(x)[device], tree)


def test_train_step_parity_x1_under_pmap(x1_checkpoint):
  """Training mode on 2 devices: outputs and the updated (cross-replica) statistics."""
  assert jax.local_device_count() == 2
  inputs = _inputs(2, batch=2, frames=4, size=32, audio_frames=40, leading=(2,))
  variables, (haiku_out, haiku_state, _), (flax_out, flax_stats, _) = _pmap_train_step(
      x1_checkpoint, False, *inputs)
  for device in range(2):
    _compare_outputs(_device(flax_out, device), _device(haiku_out, device), with_text=True,
                     where=f"device {device} ")
    assert _compare_with_haiku_tree(_device(flax_stats, device), _device(haiku_state, device),
                                    "batch_stats", f"device {device} statistics") == 606
  # Cross-replica statistics: both devices hold the same, moved by the step.
  stats = flax_stats["video_encoder"]["unit_1"]["block_0"]["norm_1"]["mean_ema"]
  np.testing.assert_array_equal(np.asarray(stats["average"])[0], np.asarray(stats["average"])[1])
  before = variables["batch_stats"]["video_encoder"]["unit_1"]["block_0"]["norm_1"]["mean_ema"]
  assert int(np.asarray(stats["counter"])[0]) == int(before["counter"]) + 1
  assert not np.allclose(np.asarray(stats["hidden"])[0], before["hidden"])


@pytest.mark.slow
def test_gradient_parity_x1_under_pmap(x1_checkpoint):
  """The gradients of one training step (cross-entropy on the logits), pmean'd over 2 devices."""
  inputs = _inputs(5, batch=2, frames=4, size=32, audio_frames=40, leading=(2,))
  _, (haiku_out, _, haiku_grads), (flax_out, _, flax_grads) = _pmap_train_step(
      x1_checkpoint, True, *inputs)
  _compare_outputs(_device(flax_out, 0), _device(haiku_out, 0), with_text=True)
  assert _compare_with_haiku_tree(_device(flax_grads, 0), _device(haiku_grads, 0), "params",
                                  "gradient") == 330


@pytest.mark.slow
def test_full_size_parity():
  """The released input size: 32 frames of 224x224 and [183, 80] log-mel audio.

  x2 V&A (FakeOut's released configuration) in evaluation (B=1); x1 in training mode on 2
  devices (B=1 each).
  """
  checkpoint = reference.random_checkpoint(width_mult=2, seed=7)
  video, audio, words, _ = _inputs(8, batch=1, frames=32, size=224, audio_frames=183)
  haiku = reference.transformed(width_mult=2, axis_name=None)
  haiku_out, _ = jax.jit(lambda p, s: haiku.apply(p, s, None, video, audio, words, False))(
      checkpoint["params"], checkpoint["state"])
  model = _flax_model("tsm_resnet_x2", use_text=False)
  variables = _convert(checkpoint, model, video, audio, None)
  del checkpoint
  flax_out = jax.jit(lambda v: model.apply(v, video, audio, train=False))(variables)
  _compare_outputs(flax_out, haiku_out, with_text=False, where="x2 eval ")
  del variables, flax_out, haiku_out

  checkpoint = reference.random_checkpoint(width_mult=1, seed=9)
  video, audio, words, _ = _inputs(10, batch=1, frames=32, size=224, audio_frames=183,
                                   leading=(2,))
  haiku = reference.transformed(width_mult=1)
  haiku_out, haiku_state = jax.pmap(
      lambda p, s, v, a, w: haiku.apply(p, s, None, v, a, w, True),
      axis_name=reference.CROSS_REPLICA_AXIS, in_axes=(None, None, 0, 0, 0))(
          checkpoint["params"], checkpoint["state"], video, audio, words)
  model = _flax_model("tsm_resnet_x1", use_text=False, axis_name="batch")
  variables = _convert(checkpoint, model, video[0], audio[0], None)
  flax_out, flax_stats = jax.pmap(
      lambda v, x, a: model.apply(v, x, a, train=True, mutable=["batch_stats"]),
      axis_name="batch", in_axes=(None, 0, 0))(variables, video, audio)
  _compare_outputs(_device(flax_out, 1), _device(haiku_out, 1), with_text=False,
                   where="x1 train ")
  _compare_with_haiku_tree(_device(flax_stats["batch_stats"], 1), _device(haiku_state, 1),
                           "batch_stats", "x1 train statistics")
