"""Flax networks of the inconsistency detector against PyTorch references (fixtures from
tools/make_inconsistency_fixtures.py), plus shapes, masks, bad inputs and pmap batch norm."""
import json
import pathlib

import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data import constants
from inconsistency_jax import checkpoints
from inconsistency_jax.configs import model as model_config
from inconsistency_jax.models import detector
from inconsistency_jax.models import iresnet
from inconsistency_jax.models import temporal
from inconsistency_jax.models import whisper

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "inconsistency"
ATOL = 1e-4


@pytest.fixture(scope="module")
def adaface_io():
  return np.load(FIXTURES / "adaface_io.npz")


@pytest.fixture(scope="module")
def whisper_io():
  return np.load(FIXTURES / "whisper_io.npz")


def _iresnet(conversion):
  info = conversion.info
  return iresnet.IResNet(arch=info["arch"], stage_widths=tuple(info["stage_widths"]),
                         stem_width=info["stem_width"], embedding_dim=info["embedding_dim"])


@pytest.mark.parametrize("filename,arch,key", [
    ("adaface_ir18_reduced.ckpt", "ir_18", "ir18"),
    ("cvlface_ir50_reduced.safetensors", "ir_50", "ir50"),
])
def test_iresnet_matches_reference(adaface_io, filename, arch, key):
  conversion = checkpoints.convert_adaface(FIXTURES / filename, arch, use_torch=False)
  model = _iresnet(conversion)
  # The reference got AdaFace's to_input (BGR flip, normalisation) of the same RGB faces.
  feature, norm = model.apply(conversion.variables,
                              iresnet.preprocess_faces(adaface_io["faces_rgb"]))
  np.testing.assert_allclose(feature, adaface_io[f"{key}_feature"], rtol=0, atol=ATOL)
  np.testing.assert_allclose(norm, adaface_io[f"{key}_norm"], rtol=0, atol=ATOL)
  np.testing.assert_allclose(np.linalg.norm(feature, axis=-1), 1.0, atol=1e-5)


def test_iresnet_unit_at_real_width_matches_reference(adaface_io):
  unit = iresnet.BasicBlockIR(width=128, stride=2)
  x = adaface_io["unit_input"]
  shapes = {(key[0], "body_3") + key[1:]: shape
            for key, shape in checkpoints.variable_shapes(unit, jnp.asarray(x)).items()}
  state_dict = checkpoints.read_tensors(FIXTURES / "iresnet_unit_64_128.pt", use_torch=False)
  conversion = checkpoints.convert_state_dict(
      {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}, shapes,
      checkpoints.ADAFACE_RULES, source="unit", model="BasicBlockIR")
  variables = {c: tree["body_3"] for c, tree in conversion.variables.items()}
  y = unit.apply(variables, x)
  assert y.shape == (2, 7, 7, 128)
  np.testing.assert_allclose(y, adaface_io["unit_output"], rtol=0, atol=ATOL)


def test_preprocess_flips_rgb_to_bgr_and_scales():
  rgb = np.zeros((1, 112, 112, 3), np.uint8)
  rgb[..., 0] = 255  # pure red
  bgr = np.asarray(iresnet.preprocess_faces(rgb))
  np.testing.assert_allclose(bgr[0, 0, 0], [-1.0, -1.0, 1.0])


def test_iresnet_rejects_wrong_face_size():
  model = iresnet.IResNet(arch="ir_18", stage_widths=(4, 8, 16, 32), stem_width=4,
                          embedding_dim=8)
  with pytest.raises(ValueError, match=r"\[batch, 112, 112, 3\].*got \(2, 224, 224, 3\)"):
    model.init(jax.random.PRNGKey(0), jnp.zeros((2, 224, 224, 3)))
  with pytest.raises(ValueError, match="arch must be one of"):
    iresnet.IResNet(arch="ir_152").init(jax.random.PRNGKey(0), jnp.zeros((1, 112, 112, 3)))


def _whisper(conversion, **kwargs):
  dims = {k: conversion.info[k] for k in ("n_mels", "width", "num_heads", "num_layers",
                                          "context")}
  return whisper.WhisperEncoder(**dims, **kwargs)


@pytest.mark.parametrize("source,mel,output", [
    ("whisper_reduced.pt", "openai_mel", "openai_output"),  # float16 weights, as released
    ("whisper_reduced_128mel.pt", "mel128", "mel128_output"),  # large-v3 front (128 mels)
    ("whisper_reduced_hf", "hf_mel", "hf_output"),  # HuggingFace folder
])
def test_whisper_encoder_matches_reference(whisper_io, source, mel, output):
  conversion = checkpoints.convert_whisper(FIXTURES / source, use_torch=False)
  tokens = _whisper(conversion).apply(conversion.variables, whisper_io[mel])
  np.testing.assert_allclose(tokens, whisper_io[output], rtol=0, atol=ATOL)


def test_whisper_shorter_window_slices_positions(whisper_io):
  conversion = checkpoints.convert_whisper(FIXTURES / "whisper_reduced.pt", use_torch=False)
  mel = whisper_io["openai_mel"][:, :80]
  with pytest.raises(ValueError, match=r"takes 200 mel frames.*got 80.*allow_shorter_context"):
    _whisper(conversion).apply(conversion.variables, mel)
  tokens = _whisper(conversion, allow_shorter_context=True).apply(conversion.variables, mel)
  np.testing.assert_allclose(tokens, whisper_io["openai_short_output"], rtol=0, atol=ATOL)


def test_whisper_block_with_64_dim_heads(whisper_io):
  block = whisper.ResidualAttentionBlock(num_heads=2)
  x = whisper_io["block_input"]
  shapes = {(key[0], "blocks_0") + key[1:]: shape
            for key, shape in checkpoints.variable_shapes(block, jnp.asarray(x)).items()}
  state_dict = checkpoints.read_tensors(FIXTURES / "whisper_block_128x2.pt", use_torch=False)
  conversion = checkpoints.convert_state_dict(
      {k[len("encoder."):]: v for k, v in state_dict.items()}, shapes, checkpoints.WHISPER_RULES,
      source="block", model="ResidualAttentionBlock")
  y = block.apply({"params": conversion.variables["params"]["blocks_0"]}, x)
  np.testing.assert_allclose(y, whisper_io["block_output"], rtol=0, atol=ATOL)


@pytest.mark.parametrize("width", [384, 1280])
def test_sinusoids_match_released_tables(whisper_io, width):
  table = whisper.sinusoids(whisper.AUDIO_CONTEXT, width)
  rows = whisper_io[f"sinusoids_{width}_rows"]
  # openai-whisper builds its table in float32 (errors up to ~1e-4 at position 1499); ours is
  # exact. Checkpoints bring their own table, so this only concerns initialisation.
  np.testing.assert_allclose(table[rows[:3]], whisper_io[f"sinusoids_{width}"][:3], atol=1e-6)
  np.testing.assert_allclose(table[rows], whisper_io[f"sinusoids_{width}"], rtol=0, atol=2e-4)


def test_whisper_sizes_and_bad_mel():
  assert whisper.WHISPER_SIZES["large-v3"].n_mels == 128
  assert whisper.WHISPER_SIZES["small"] == (80, 768, 12, 12)
  encoder = whisper.WhisperEncoder.from_size("tiny")
  with pytest.raises(ValueError, match=r"\[batch, frames, 80\]"):
    encoder.init(jax.random.PRNGKey(0), jnp.zeros((1, 3000, 128)))
  with pytest.raises(ValueError, match="size must be one of"):
    whisper.WhisperEncoder.from_size("huge")


def test_temporal_transformer_is_unit_norm_and_ignores_masked_frames():
  model = temporal.TemporalTransformer(embed_dim=16, width=32, depth=2, num_heads=4,
                                       max_length=8, dropout_rate=0.0)
  features = jax.random.normal(jax.random.PRNGKey(1), (2, 6, 24))
  variables = model.init(jax.random.PRNGKey(0), features)
  out = model.apply(variables, features)
  assert out.shape == (2, 16)
  np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-5)
  # Frames 4 and 5 masked: changing them must not change the embedding.
  valid = np.array([[True] * 4 + [False] * 2] * 2)
  noisy = features.at[:, 4:].set(100.0)
  np.testing.assert_allclose(model.apply(variables, features, valid),
                             model.apply(variables, noisy, valid), atol=1e-5)
  with pytest.raises(ValueError, match="longer than max_length=8"):
    model.apply(variables, jnp.zeros((1, 9, 24)))


def test_tiny_detector_three_unit_embeddings():
  config = model_config.get_config("tiny")
  model = detector.build_detector(config)
  frames = config.frames_per_window
  faces = jax.random.randint(jax.random.PRNGKey(2), (2, frames, 112, 112, 3), 0, 256)
  mel = jax.random.normal(jax.random.PRNGKey(3), (2, int(config.window_seconds * 100), 80))
  # One compilation for variables and outputs: XLA compile time dominates on CPU.
  out, variables = jax.jit(model.init_with_output)(jax.random.PRNGKey(0), faces, mel)
  assert set(out) == {"identity", "visual", "audio"}
  for value in out.values():
    assert value.shape == (2, config.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(value, axis=-1), 1.0, atol=1e-5)
  # mu and gamma have separate weights.
  params = variables["params"]
  assert not np.allclose(params["identity_encoder"]["temporal"]["output_projection"]["kernel"],
                         params["visual_encoder"]["temporal"]["output_projection"]["kernel"])
  mask = flax.traverse_util.flatten_dict(detector.trainable_mask(params))
  frozen = [key for key, trainable in mask.items() if not trainable]
  assert frozen == [("audio_encoder", "whisper", "positional_embedding")]
  with pytest.raises(ValueError, match=r"faces \[batch, frames, 112, 112, 3\]"):
    model.apply(variables, faces[:, 0], None)


def test_default_config_matches_released_sizes():
  config = model_config.get_config()
  assert config.identity.arch == "ir_101" and config.visual.arch == "ir_101"
  assert detector.whisper_dims(config.audio) == whisper.WHISPER_SIZES["small"]
  assert detector.window_tokens(config) == 50
  assert config.bn_axis_name is None
  config.bn_axis_name = "batch"  # what a pmap training config sets
  assert detector.build_detector(config).identity_encoder.bn_axis_name == "batch"


def test_batch_norm_statistics_are_shared_across_pmap_devices():
  devices = jax.local_device_count()
  assert devices == 2
  model = iresnet.IResNet(arch="ir_18", stage_widths=(4, 8, 8, 8), stem_width=4,
                          embedding_dim=8, dropout_rate=0.0, bn_axis_name="batch")
  faces = jax.random.normal(jax.random.PRNGKey(0), (devices, 2, constants.IDENTITY_FACE_SIZE,
                                                    constants.IDENTITY_FACE_SIZE, 3))
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), faces[0])

  def step(x):
    _, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    return updates["batch_stats"]["stem_bn"]["mean"]

  means = jax.pmap(step, axis_name="batch")(faces)  # pmap compiles: no eager op dispatch
  np.testing.assert_allclose(means[0], means[1], atol=1e-6)
  # The shared statistic is the one of the whole global batch.
  single_device = iresnet.IResNet(arch="ir_18", stage_widths=(4, 8, 8, 8), stem_width=4,
                                  embedding_dim=8, dropout_rate=0.0)
  _, single = jax.jit(lambda x: single_device.apply(variables, x, train=True,
                                                    mutable=["batch_stats"]))(
      faces.reshape((-1,) + faces.shape[2:]))
  np.testing.assert_allclose(means[0], single["batch_stats"]["stem_bn"]["mean"], atol=1e-5)


@pytest.mark.slow
def test_full_size_networks_run_on_converted_key_lists(reference_facts):
  """Released layouts (zero weights from the key lists) drive full-size forwards."""
  folder = reference_facts / "inconsistency"
  keys = json.loads((folder / "adaface_ir50_state_dict.json").read_text())
  raw = {"state_dict": {f"model.{k}": np.full(s, 0.5 if "var" in k else 0.01, np.float32)
                        for k, (s, _) in keys.items()}}
  conversion = checkpoints.convert_adaface("ir50.ckpt", "ir_50", raw=raw)
  feature, norm = jax.jit(iresnet.IResNet(arch="ir_50").apply)(
      conversion.variables, jnp.ones((2, 112, 112, 3)))
  assert feature.shape == (2, 512) and norm.shape == (2, 1)
  keys = json.loads((folder / "whisper_tiny_encoder_state_dict.json").read_text())
  raw = {k: np.full(s, 0.01, np.float32) for k, (s, _) in keys.items()}
  conversion = checkpoints.convert_whisper("tiny.pt", raw=raw)
  tokens = jax.jit(whisper.WhisperEncoder.from_size("tiny").apply)(
      conversion.variables, jnp.zeros((1, 3000, 80)))
  assert tokens.shape == (1, 1500, 384) and np.all(np.isfinite(tokens))
