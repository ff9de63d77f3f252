"""FakeOut's Flax modules on their own: shift layout, batch norm, shapes, modes, bad input.

Numerical parity with the original network is in test_fakeout_parity.py.
"""
import json

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fakeout_jax import models
from fakeout_jax.configs import model as model_config
from fakeout_jax.models import batch_norm
from fakeout_jax.models import fakeout
from tests import mmv_haiku_reference as reference

VIDEO = (2, 4, 32, 32, 3)
AUDIO = (2, 40, 80, 1)


def _init_shapes(model, video=VIDEO, audio=AUDIO, train=False):
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(video),
                                           None if audio is None else jnp.zeros(audio),
                                           train=train))


# ------------------------------------------------------------------------------ oracle


@pytest.mark.parametrize("width_mult", [1, 2])
def test_haiku_reference_trees_equal_the_original(reference_facts, width_mult):
  """The test oracle has exactly the original's params and state (names, shapes, dtypes)."""
  params, state = reference.variable_shapes(width_mult)
  folder = reference_facts / "mmv"
  for tree, suffix in ((params, "params"), (state, "state")):
    ours = {module: {name: [list(leaf.shape), str(leaf.dtype)] for name, leaf in entries.items()}
            for module, entries in tree.items()}
    original = json.loads((folder / f"mmv_tsm_resnet_x{width_mult}_{suffix}.json").read_text())
    assert ours == original


# ------------------------------------------------------------------------------ temporal shift


def test_temporal_shift_has_the_original_channel_layout():
  # 2 clips x 3 frames, 8 channels -> n = 1 channel moved each way; value = 100*t + channel.
  frames, channels = 3, 8
  clip = (np.arange(frames)[:, None] * 100 + np.arange(channels)[None, :]).astype(np.float32)
  x = np.stack([clip, clip + 1000]).reshape(2 * frames, 1, 1, channels)
  out = np.asarray(models.temporal_shift(jnp.asarray(x), frames)).reshape(2, frames, channels)
  for b, offset in enumerate((0, 1000)):
    for t in range(frames):
      # Channel 0 holds the NEXT frame's LAST channel, channel 7 the PREVIOUS frame's FIRST.
      expected_first = 100 * (t + 1) + 7 + offset if t + 1 < frames else 0
      expected_last = 100 * (t - 1) + 0 + offset if t >= 1 else 0
      assert out[b, t, 0] == expected_first
      np.testing.assert_array_equal(out[b, t, 1:7], 100 * t + np.arange(1, 7) + offset)
      assert out[b, t, 7] == expected_last


def test_temporal_shift_matches_the_oracle_and_moves_an_eighth():
  x = jax.random.normal(jax.random.PRNGKey(0), (3 * 5, 4, 4, 64))
  ours = models.temporal_shift(x, 5)
  np.testing.assert_array_equal(ours, reference.shift_frames(x, 5))
  # 64 channels -> 8 from the next frame, 8 from the previous one.
  clips, shifted = np.asarray(x).reshape(3, 5, 4, 4, 64), np.asarray(ours).reshape(3, 5, 4, 4, 64)
  np.testing.assert_array_equal(shifted[:, :-1, ..., :8], clips[:, 1:, ..., 56:])
  np.testing.assert_array_equal(shifted[:, 1:, ..., 56:], clips[:, :-1, ..., :8])
  assert not shifted[:, -1, ..., :8].any() and not shifted[:, 0, ..., 56:].any()


# ------------------------------------------------------------------------------ batch norm


def test_batch_norm_updates_zero_debiased_averages_like_the_original():
  norm = batch_norm.CrossReplicaBatchNorm()
  x = jax.random.normal(jax.random.PRNGKey(1), (6, 3, 3, 5)) * 2.0 + 1.0
  variables = norm.init(jax.random.PRNGKey(0), x, train=True)
  stats = flax.core.unfreeze(variables["batch_stats"])
  stats["mean_ema"].update(counter=np.int32(4), hidden=np.full(5, 0.3, np.float32))
  stats["var_ema"].update(counter=np.int32(4), hidden=np.full(5, 0.7, np.float32))
  params = {"scale": np.linspace(0.5, 1.5, 5).astype(np.float32),
            "bias": np.linspace(-1, 1, 5).astype(np.float32)}
  y, updates = norm.apply({"params": params, "batch_stats": stats}, x, train=True,
                          mutable=["batch_stats"])
  xs = np.asarray(x, np.float64)
  mean, var = xs.mean((0, 1, 2)), (xs ** 2).mean((0, 1, 2)) - xs.mean((0, 1, 2)) ** 2
  for name, value, start in (("mean_ema", mean, 0.3), ("var_ema", var, 0.7)):
    ema = updates["batch_stats"][name]
    hidden = start * 0.9 + value * 0.1
    assert int(ema["counter"]) == 5
    np.testing.assert_allclose(ema["hidden"], hidden, rtol=1e-5)
    np.testing.assert_allclose(ema["average"], hidden / (1 - 0.9 ** 5), rtol=1e-5)
  expected = (xs - mean) / np.sqrt(var + 1e-5) * params["scale"] + params["bias"]
  np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
  # Evaluation normalises with the debiased averages.
  y_eval = norm.apply({"params": params, "batch_stats": updates["batch_stats"]}, x, train=False)
  average = updates["batch_stats"]
  expected_eval = ((xs - np.asarray(average["mean_ema"]["average"]))
                   / np.sqrt(np.asarray(average["var_ema"]["average"]) + 1e-5)
                   * params["scale"] + params["bias"])
  np.testing.assert_allclose(y_eval, expected_eval, rtol=1e-4, atol=1e-5)


def test_cross_replica_statistics_equal_the_global_batch():
  x = jax.random.normal(jax.random.PRNGKey(2), (2, 4, 3, 7)) * 3.0 - 2.0
  local = batch_norm.CrossReplicaBatchNorm()
  replicated = batch_norm.CrossReplicaBatchNorm(axis_name="batch")
  variables = local.init(jax.random.PRNGKey(0), x[0], train=False)
  y_global, global_stats = local.apply(variables, x.reshape(8, 3, 7), train=True,
                                       mutable=["batch_stats"])
  y_pmap, pmap_stats = jax.pmap(
      lambda xs: replicated.apply(variables, xs, train=True, mutable=["batch_stats"]),
      axis_name="batch")(x)
  np.testing.assert_allclose(np.asarray(y_pmap).reshape(8, 3, 7), y_global, rtol=1e-5,
                             atol=1e-5)
  for device in range(2):
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a[device], b, rtol=1e-5, atol=1e-6),
        pmap_stats, global_stats)


# ------------------------------------------------------------------------------ shapes, modes


@pytest.mark.parametrize("backbone,video_dim", [("tsm_resnet_x1", 2048), ("tsm_resnet_x2", 4096)])
def test_output_shapes(backbone, video_dim):
  model = models.create_model(model_config.get_config(backbone))
  shapes = _init_shapes(model)
  outputs = jax.eval_shape(lambda v: model.apply(v, jnp.zeros(VIDEO), jnp.zeros(AUDIO),
                                                 train=False), shapes)
  assert outputs["logits"].shape == (2, 2)
  assert outputs["vid_repr"].shape == (2, video_dim)
  assert outputs["aud_repr"].shape == (2, 2048)
  assert outputs["vid_embd"]["toaud"].shape == (2, 512)
  assert outputs["vid_embd"]["totxt"].shape == (2, 256)
  assert outputs["aud_embd"]["tovid"].shape == (2, 512)
  assert outputs["aud_embd"]["totxt"].shape == (2, 256)
  assert shapes["params"]["classifier"]["dense_0"]["kernel"].shape == (video_dim + 2048, 512)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(shapes["params"]))
  # Training mode reaches the text space through audio_to_text (512-d), as the original.
  train_outputs = jax.eval_shape(
      lambda v: model.apply(v, jnp.zeros(VIDEO), jnp.zeros(AUDIO), train=True,
                            mutable=["batch_stats"])[0], shapes)
  assert train_outputs["aud_embd"]["totxt"].shape == (2, 512)


def test_config_builds_the_released_model():
  config = model_config.get_config("tsm_resnet_x2")
  assert (config.width_mult, config.modality, config.head.activation) == (2, "video_audio", None)
  assert (config.bn.decay, config.bn.epsilon) == (0.9, 1e-5)
  model = models.create_model(config, axis_name="batch")
  assert model.axis_name == "batch" and model.width_mult == 2
  with pytest.raises(ValueError, match="tsm_resnet_x1"):
    model_config.get_config("resnet50")


def test_video_mode_keeps_every_variable_and_ignores_audio():
  config = model_config.get_config("tsm_resnet_x1")
  config.modality = "video"
  config.compute_embeddings = False
  model = models.create_model(config)
  video = (1, 2, 32, 32, 3)
  shapes = _init_shapes(model, video=video, audio=None)
  assert "audio_encoder" in shapes["params"] and "embedding_heads" in shapes["params"]
  assert shapes["batch_stats"]["audio_encoder"]["final_norm"]["var_ema"]["average"].shape == (
      2048,)
  assert shapes["params"]["classifier"]["dense_0"]["kernel"].shape == (2048, 512)
  # Audio given in V mode never reaches the computation.
  jaxpr = jax.make_jaxpr(lambda v, audio: model.apply(v, jnp.zeros(video), audio, train=False))(
      shapes, jax.ShapeDtypeStruct((1, 40, 80, 1), jnp.float32))
  audio_var = jaxpr.jaxpr.invars[-1]
  assert all(audio_var not in eqn.invars for eqn in jaxpr.jaxpr.eqns)
  outputs = jax.eval_shape(lambda v: model.apply(v, jnp.zeros(video), train=False), shapes)
  assert set(outputs) == {"logits", "vid_repr"} and outputs["logits"].shape == (1, 2)


def test_released_head_is_affine_and_relu_option_is_not():
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 16))
  released = fakeout.FakeOutHead(hidden_features=(8, 4))
  shapes = released.init(jax.random.PRNGKey(1), x)
  leaves, treedef = jax.tree_util.tree_flatten(shapes)
  keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
  params = jax.tree_util.tree_unflatten(
      treedef, [jax.random.normal(k, leaf.shape) for k, leaf in zip(keys, leaves)])
  # Three Linear layers with nothing in between compose to one affine map.
  weights = [params["params"][f"dense_{i}"] for i in range(3)]
  kernel = weights[0]["kernel"] @ weights[1]["kernel"] @ weights[2]["kernel"]
  bias = (weights[0]["bias"] @ weights[1]["kernel"] + weights[1]["bias"]) @ weights[2]["kernel"] \
      + weights[2]["bias"]
  np.testing.assert_allclose(released.apply(params, x), x @ kernel + bias, rtol=1e-4, atol=1e-4)
  paper = fakeout.FakeOutHead(hidden_features=(8, 4), activation="relu")
  assert not np.allclose(paper.apply(params, x), x @ kernel + bias, atol=1e-2)
  with pytest.raises(ValueError, match="activation"):
    fakeout.FakeOutHead(activation="gelu").init(jax.random.PRNGKey(0), x)


def test_bfloat16_compute_keeps_float32_parameters():
  config = model_config.get_config("tsm_resnet_x1")
  config.dtype = "bfloat16"
  model = models.create_model(config)
  shapes = _init_shapes(model, video=(1, 2, 32, 32, 3), audio=(1, 32, 80, 1))
  assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(shapes["params"])} == {
      np.dtype("float32")}
  outputs = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((1, 2, 32, 32, 3)),
                                                 jnp.zeros((1, 32, 80, 1)), train=False), shapes)
  assert outputs["logits"].dtype == jnp.float32 and outputs["vid_repr"].dtype == jnp.float32


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("video,audio,match", [
    ((2, 32, 32, 3), AUDIO, r"\[B, T, H, W, 3\]"),            # missing time axis
    ((2, 4, 32, 32, 1), AUDIO, r"\[B, T, H, W, 3\]"),         # grey frames
    ((2, 4, 32, 32, 3, 1), AUDIO, r"\[B, T, H, W, 3\]"),      # rank 6
    (VIDEO, None, r"\[B, time, mel, 1\]"),                    # V&A without audio
    (VIDEO, (2, 40, 80), r"\[B, 183, 80, 1\]"),               # audio without channel
    (VIDEO, (3, 40, 80, 1), r"B = 2"),                        # batch mismatch
])
def test_bad_input_shapes_raise_value_error_naming_the_expected_shape(video, audio, match):
  model = models.create_model(model_config.get_config("tsm_resnet_x1"))
  with pytest.raises(ValueError, match=match):
    _init_shapes(model, video=video, audio=audio)


def test_backbones_check_their_own_input():
  with pytest.raises(ValueError, match=r"\[B, 32, 224, 224, 3\]"):
    models.TSMResNetV2().init(jax.random.PRNGKey(0), jnp.zeros((4, 32, 32, 3)), train=False)
  with pytest.raises(ValueError, match=r"\[B, 183, 80, 1\]"):
    models.AudioResNetV2().init(jax.random.PRNGKey(0), jnp.zeros((2, 183, 80)), train=False)
