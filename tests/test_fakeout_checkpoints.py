"""Reading the original Haiku checkpoints safely, mapping them onto Flax, orbax, the CLI."""
import json
import os
import pathlib
import pickle
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fakeout_jax import checkpoints
from fakeout_jax import convert
from fakeout_jax import models
from fakeout_jax import safe_pickle
from fakeout_jax.configs import model as model_config
from tests import fakeout_legacy_pickles as legacy
from tests import mmv_haiku_reference as reference

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
TEXT_ENTRIES = 7  # embed, text_conv1 (w, b), txt_embd (w, b), txt2audio_embd (w, b)


def _expected(backbone, use_text=False, modality="video_audio"):
  config = model_config.get_config(backbone)
  config.use_text, config.modality = use_text, modality
  model = models.create_model(config)
  return jax.eval_shape(lambda: model.init(
      jax.random.PRNGKey(0), jnp.zeros((1, 2, 32, 32, 3)), jnp.zeros((1, 32, 32, 1)),
      jnp.zeros((1, 4), jnp.int32), train=False))


@pytest.fixture(scope="module")
def expected_shapes():
  cache = {}

  def get(backbone, use_text=False, modality="video_audio"):
    key = (backbone, use_text, modality)
    if key not in cache:
      cache[key] = _expected(*key)
    return cache[key]
  return get


def _checkpoint_from_json(reference_facts, width_mult):
  """A checkpoint with the reference's exact names and shapes (zero-stride arrays, no memory)."""
  checkpoint = {}
  for tree in ("params", "state"):
    spec = json.loads((reference_facts / "mmv" /
                       f"mmv_tsm_resnet_x{width_mult}_{tree}.json").read_text())
    checkpoint[tree] = {module: {name: np.broadcast_to(np.zeros((), dtype), shape)
                                 for name, (shape, dtype) in entries.items()}
                        for module, entries in spec.items()}
  return checkpoint


def _count(checkpoint):
  return sum(len(entries) for tree in checkpoint.values() for entries in tree.values())


# ------------------------------------------------------------------------------ name map


@pytest.mark.parametrize("width_mult", [1, 2])
def test_converter_maps_every_entry_of_the_reference_trees(
    reference_facts, expected_shapes, width_mult):
  checkpoint = _checkpoint_from_json(reference_facts, width_mult)
  backbone = f"tsm_resnet_x{width_mult}"
  total = _count(checkpoint)
  assert total == 330 + 606

  # With the text branch: 100% of the entries land in the model, nothing left over.
  _, report = checkpoints.convert(checkpoint, expected_shapes(backbone, use_text=True))
  assert report.ok and not report.dropped and not report.initialised
  assert len(report.mapped) == total
  assert {hk for hk, _, _ in report.mapped} == {
      f"{tree}:{module}:{name}" for tree in checkpoint for module in checkpoint[tree]
      for name in checkpoint[tree][module]}

  # FakeOut's model: everything but the text branch is mapped; the text branch is reported.
  _, report = checkpoints.convert(checkpoint, expected_shapes(backbone))
  assert report.ok and len(report.dropped) == TEXT_ENTRIES
  assert len(report.mapped) + len(report.dropped) == total
  assert all(("text_module" in hk or "txt" in hk) for hk, _ in report.dropped)


def test_name_rules_examples():
  assert checkpoints.haiku_key("params", ("video_encoder", "unit_2", "block_0", "norm_2",
                                          "bias")) == (
      "params", "text_audio_video/visual_module/~/TSMResNetV2/tsm_resnet_unit_2/block_0/"
      "__cross_replica_batch_norm_2", "offset")
  assert checkpoints.haiku_key("batch_stats", ("audio_encoder", "unit_3", "block_1", "norm_0",
                                               "var_ema", "counter")) == (
      "state", "text_audio_video/audio_module/~/res_net_v2/~/block_group_3/block_1/"
      "__cross_replica_batch_norm/~/var_ema", "counter")
  assert checkpoints.haiku_key("params", ("audio_encoder", "unit_0", "block_0", "shortcut_conv",
                                          "kernel")) == (
      "params", "text_audio_video/audio_module/~/res_net_v2/~/block_group_0/block_0/~/"
      "shortcut_conv", "w")
  assert checkpoints.haiku_key("params", ("classifier", "dense_2", "kernel")) == (
      "params", "third_mlp_layer", "w")
  assert checkpoints.haiku_key("params", ("nowhere", "kernel")) is None


def test_x1_checkpoint_into_x2_model_names_every_mismatch(reference_facts, expected_shapes):
  x1 = _checkpoint_from_json(reference_facts, 1)
  x2 = _checkpoint_from_json(reference_facts, 2)

  def squeezed(shape):
    return tuple(shape[-1:]) if len(shape) > 1 and all(d == 1 for d in shape[:-1]) else shape

  differing = {f"{tree}:{module}:{name}" for tree in x1 for module in x1[tree]
               for name in x1[tree][module]
               if "text_module" not in module and "txt" not in module
               and squeezed(x1[tree][module][name].shape) != squeezed(
                   x2[tree][module][name].shape)}
  with pytest.raises(checkpoints.CheckpointMismatchError) as error:
    checkpoints.convert(x1, expected_shapes("tsm_resnet_x2"))
  message = str(error.value)
  assert f"{len(differing)} entries with the wrong shape" in message
  for entry in differing:
    assert entry in message
  assert ("params:text_audio_video/visual_module/~/TSMResNetV2/tsm_resnet_stem:w -> "
          "params/video_encoder/stem_conv/kernel: checkpoint [7, 7, 3, 64], model expects "
          "[7, 7, 3, 128]") in message
  assert "use --config tsm_resnet_x1" in message


def test_missing_unexpected_and_mis_shaped_are_reported_together(
    reference_facts, expected_shapes):
  checkpoint = _checkpoint_from_json(reference_facts, 1)
  video = "text_audio_video/visual_module/~/TSMResNetV2"
  del checkpoint["params"][f"{video}/tsm_resnet_unit_1/block_2/conv_1"]
  del checkpoint["state"][f"{video}/__cross_replica_batch_norm/~/mean_ema"]["hidden"]
  checkpoint["params"]["text_audio_video/extra_module"] = {"w": np.zeros((3, 3), np.float32)}
  checkpoint["params"][f"{video}/tsm_resnet_stem"]["w"] = np.zeros((7, 7, 3, 32), np.float32)
  with pytest.raises(checkpoints.CheckpointMismatchError) as error:
    checkpoints.convert(checkpoint, expected_shapes("tsm_resnet_x1"))
  message = str(error.value)
  assert "2 model entries missing" in message
  assert f"params:{video}/tsm_resnet_unit_1/block_2/conv_1:w" in message
  assert f"state:{video}/__cross_replica_batch_norm/~/mean_ema:hidden" in message
  assert "1 checkpoint entries the model has no place for" in message
  assert "params:text_audio_video/extra_module:w [3, 3]" in message
  assert "1 entries with the wrong shape" in message and "[7, 7, 3, 32]" in message


def test_mmv_checkpoint_without_classifier_gets_a_fresh_head(reference_facts, expected_shapes):
  checkpoint = _checkpoint_from_json(reference_facts, 2)
  for name in checkpoints.CLASSIFIER_LAYERS:
    del checkpoint["params"][name]
  expected = expected_shapes("tsm_resnet_x2")
  with pytest.raises(checkpoints.CheckpointMismatchError, match="--head fresh"):
    checkpoints.convert(checkpoint, expected, head="checkpoint")
  head = models.FakeOutHead().init(jax.random.PRNGKey(3), jnp.zeros((1, 6144)))["params"]
  variables, report = checkpoints.convert(checkpoint, expected, head="auto",
                                          head_variables=head)
  assert report.ok and len(report.initialised) == 6
  np.testing.assert_array_equal(variables["params"]["classifier"]["dense_1"]["kernel"],
                                head["dense_1"]["kernel"])


def test_modality_is_detected_from_the_classifier(reference_facts):
  x2 = _checkpoint_from_json(reference_facts, 2)
  assert convert._detect_modality(x2, 2) == "video_audio"
  x2["params"]["first_mlp_layer"]["w"] = np.zeros((4096, 512), np.float32)
  assert convert._detect_modality(x2, 2) == "video"
  # 4096 features are also x1's V&A: the width then decides (a wrong --config is caught by
  # the backbone shapes).
  assert convert._detect_modality(x2, 1) == "video_audio"
  x2["params"]["first_mlp_layer"]["w"] = np.zeros((5000, 512), np.float32)
  with pytest.raises(checkpoints.CheckpointMismatchError, match="fits neither"):
    convert._detect_modality(x2, 2)


# ------------------------------------------------------------------------------ unpickler


SMALL = {"params": {"m/conv": {"w": np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)},
                    "m/~/bn": {"scale": np.ones((1, 4), np.float32),
                               "offset": np.zeros((1, 4), np.float32)}},
         "state": {"m/~/bn/~/mean_ema": {"counter": np.asarray(7, np.int32),
                                         "hidden": np.full((1, 4), 0.5, np.float32),
                                         "average": np.full((1, 4), 1.0, np.float32)}}}


def _assert_plain_equal(loaded, original):
  assert type(loaded) is dict and set(loaded) == set(original)
  for key, value in original.items():
    if isinstance(value, dict):
      _assert_plain_equal(loaded[key], value)
    else:
      assert type(loaded[key]) is np.ndarray and loaded[key].dtype == value.dtype
      np.testing.assert_array_equal(loaded[key], value)


@pytest.mark.parametrize("mapping_form", ["frozendict", "flat_dict", "flat_treedef"])
@pytest.mark.parametrize("array_form", ["reconstruct", "object", "dill", "numpy"])
@pytest.mark.parametrize("protocol", [2, 4])
def test_loads_the_2020_2022_container_and_array_classes(tmp_path, mapping_form, array_form,
                                                         protocol):
  path = tmp_path / "old.pkl"
  path.write_bytes(legacy.dumps(SMALL, mapping_form, array_form, protocol))
  _assert_plain_equal(checkpoints.load_haiku_checkpoint(path), SMALL)


def test_loads_plain_and_today_s_jax_arrays(tmp_path):
  path = tmp_path / "new.pkl"
  with_jax = jax.tree_util.tree_map(jnp.asarray, SMALL)
  path.write_bytes(pickle.dumps(with_jax))
  _assert_plain_equal(checkpoints.load_haiku_checkpoint(path), SMALL)


class _Evil:
  def __init__(self, command):
    self.command = command

  def __reduce__(self):
    return os.system, (self.command,)


class _EvalEvil:
  def __reduce__(self):
    return eval, ("__import__('os').getcwd()",)


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_malicious_pickle_is_refused_without_running(tmp_path, protocol):
  marker = tmp_path / "pwned"
  payload = dict(SMALL, state={"x": {"y": _Evil(f"touch {marker}")}})
  path = tmp_path / "evil.pkl"
  path.write_bytes(pickle.dumps(payload, protocol=protocol))
  with pytest.raises(checkpoints.UnsafePickleError, match=r"refusing to load '(posix|os)\.system'"):
    checkpoints.load_haiku_checkpoint(path)
  assert not marker.exists()
  path.write_bytes(pickle.dumps({"params": _EvalEvil()}, protocol=protocol))
  with pytest.raises(checkpoints.UnsafePickleError, match="builtins.eval"):
    checkpoints.load_haiku_checkpoint(path)


def test_object_arrays_are_refused(tmp_path):
  path = tmp_path / "objects.pkl"
  path.write_bytes(pickle.dumps({"params": {"m": {"w": np.array([1, "a"], dtype=object)}}}))
  with pytest.raises(checkpoints.UnsafePickleError, match="dtype object"):
    checkpoints.load_haiku_checkpoint(path)


def test_unreadable_files_give_clear_errors(tmp_path):
  good = pickle.dumps(SMALL, protocol=4)
  truncated = tmp_path / "truncated.pkl"
  truncated.write_bytes(good[:len(good) // 2])
  with pytest.raises(checkpoints.CheckpointError, match="truncated or corrupt.*Download it again"):
    checkpoints.load_haiku_checkpoint(truncated)
  text = tmp_path / "notes.pkl"
  text.write_text("these are not weights\n")
  with pytest.raises(checkpoints.CheckpointError, match="notes.pkl is not a pickle"):
    checkpoints.load_haiku_checkpoint(text)
  empty = tmp_path / "empty.pkl"
  empty.write_bytes(b"")
  with pytest.raises(checkpoints.CheckpointError, match="not a pickle"):
    checkpoints.load_haiku_checkpoint(empty)
  with pytest.raises(checkpoints.CheckpointError, match="is a directory"):
    checkpoints.load_haiku_checkpoint(tmp_path)
  with pytest.raises(checkpoints.CheckpointError, match="no such file"):
    checkpoints.load_haiku_checkpoint(tmp_path / "missing.pkl")
  wrong = tmp_path / "list.pkl"
  wrong.write_bytes(pickle.dumps([1, 2, 3]))
  with pytest.raises(checkpoints.CheckpointError, match="expected a dict with 'params'"):
    checkpoints.load_haiku_checkpoint(wrong)


def test_undecodable_treedef_is_an_error_not_a_crash():
  class FakeTreeDef:
    state = ("registry", [(6, 0, None, None, 1, 1)])  # a custom node
  with pytest.raises(checkpoints.CheckpointError, match="custom class"):
    safe_pickle._unflatten(FakeTreeDef(), [np.zeros(1)])


# ------------------------------------------------------------------------------ files, CLI


@pytest.fixture(scope="module")
def x1_checkpoint_file(tmp_path_factory):
  """A full tsm_resnet_x1 checkpoint with random values, pickled in the 2021 legacy form."""
  checkpoint = reference.random_checkpoint(width_mult=1, seed=5)
  path = tmp_path_factory.mktemp("haiku") / "mmv_tsm_resnet_x1.pkl"
  path.write_bytes(legacy.dumps(checkpoint, "flat_dict", "reconstruct", protocol=4))
  return path, checkpoint


def test_convert_command_end_to_end(x1_checkpoint_file, tmp_path):
  path, checkpoint = x1_checkpoint_file
  out = tmp_path / "converted"
  result = subprocess.run(
      [sys.executable, "-m", "fakeout_jax.convert", "--haiku", str(path), "--config",
       "tsm_resnet_x1", "--out", str(out)],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr
  assert "mapped 929 entries" in result.stdout
  assert "dropped 7 entries" in result.stdout
  assert "text_audio_video/text_module/~/embed" in result.stdout
  metadata = checkpoints.read_metadata(out)
  assert metadata["model_config"]["backbone"] == "tsm_resnet_x1"
  assert metadata["summary"]["mapped_params"] == 323

  restored = checkpoints.restore_variables(out, target=_expected("tsm_resnet_x1"))
  video = "text_audio_video/visual_module/~/TSMResNetV2"
  np.testing.assert_array_equal(restored["params"]["video_encoder"]["stem_conv"]["kernel"],
                                checkpoint["params"][f"{video}/tsm_resnet_stem"]["w"])
  ema = checkpoint["state"][f"{video}/tsm_resnet_unit_3/block_2/__cross_replica_batch_norm_1"
                            "/~/var_ema"]
  restored_ema = restored["batch_stats"]["video_encoder"]["unit_3"]["block_2"]["norm_1"][
      "var_ema"]
  np.testing.assert_array_equal(restored_ema["average"], ema["average"].reshape(-1))
  assert int(restored_ema["counter"]) == int(ema["counter"])
  np.testing.assert_array_equal(restored["params"]["classifier"]["dense_0"]["bias"],
                                checkpoint["params"]["first_mlp_layer"]["b"])

  # Refuses to overwrite unless asked.
  assert convert.main(["--haiku", str(path), "--config", "tsm_resnet_x1",
                       "--out", str(out)]) == 2


def test_convert_command_reports_bad_files(x1_checkpoint_file, tmp_path, capsys):
  path, _ = x1_checkpoint_file
  assert convert.main(["--haiku", str(path), "--config", "tsm_resnet_x2",
                       "--out", str(tmp_path / "x2")]) == 2
  error = capsys.readouterr().err
  assert "fits neither" in error or "wrong shape" in error
  assert not (tmp_path / "x2").exists()
  notes = tmp_path / "notes.txt"
  notes.write_text("hello")
  assert convert.main(["--haiku", str(notes), "--config", "tsm_resnet_x1",
                       "--out", str(tmp_path / "x")]) == 2
  assert "is not a pickle" in capsys.readouterr().err


def test_orbax_round_trip_keeps_dtypes(tmp_path):
  variables = {"params": {"a": {"kernel": np.random.default_rng(0).standard_normal(
      (3, 4)).astype(np.float32)}},
               "batch_stats": {"a": {"mean_ema": {"counter": np.asarray(9, np.int32),
                                                  "average": np.ones(4, np.float32)}}}}
  checkpoints.save_variables(tmp_path / "ckpt", variables, {"note": "test"})
  restored = checkpoints.restore_variables(tmp_path / "ckpt")
  jax.tree_util.tree_map(np.testing.assert_array_equal, restored, variables)
  assert np.asarray(restored["batch_stats"]["a"]["mean_ema"]["counter"]).dtype == np.int32
  assert checkpoints.read_metadata(tmp_path / "ckpt") == {"note": "test"}
  with pytest.raises(checkpoints.CheckpointError, match="already exists"):
    checkpoints.save_variables(tmp_path / "ckpt", variables)
  with pytest.raises(checkpoints.CheckpointError, match="fakeout_jax.convert"):
    checkpoints.restore_variables(tmp_path / "nothing")
