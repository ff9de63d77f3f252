"""Checkpoint import: 100% key coverage of the released layouts, mismatch reports, the
torch-free restricted reader (and what it refuses), orbax round trip and the convert CLI."""
import json
import os
import pathlib
import pickle
import zipfile

import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inconsistency_jax import checkpoints
from inconsistency_jax import convert
from inconsistency_jax import torch_pickle
from inconsistency_jax.models import detector

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "inconsistency"
_DTYPES = {"float32": np.float32, "float16": np.float16, "int64": np.int64}


def _key_list(reference_facts, name):
  return json.loads((reference_facts / "inconsistency" / name).read_text())


def _zeros(key_list, prefix=""):
  return {prefix + key: np.zeros(shape, _DTYPES[dtype]) for key, (shape, dtype) in
          key_list.items()}


@pytest.mark.parametrize("name,arch,prefix", [
    ("adaface_ir50_state_dict.json", "ir_50", "model."),   # AdaFace Lightning .ckpt
    ("adaface_ir101_state_dict.json", "ir_101", "model."),
    ("adaface_ir101_state_dict.json", "ir_101", "net."),   # CVLface pretrained_model/model.pt
    ("adaface_ir101_state_dict.json", "ir_101", "model.net."),  # CVLface model.safetensors
])
def test_adaface_key_lists_are_fully_covered(reference_facts, name, arch, prefix):
  keys = _key_list(reference_facts, name)
  state_dict = _zeros(keys, prefix)
  raw = {"state_dict": dict(state_dict, **{"head.kernel": np.zeros((512, 7), np.float32)})}
  if "net." in prefix:
    raw = state_dict
  conversion = checkpoints.convert_adaface(f"{arch}{prefix}ckpt", arch, raw=raw)
  mapped = {key for key, *_ in conversion.mapped}
  ignored = set(conversion.ignored)
  assert mapped | ignored >= set(keys) and not mapped & ignored
  assert ignored - {"head.kernel"} == {k for k in keys if k.endswith("num_batches_tracked")}
  flat = flax.traverse_util.flatten_dict(conversion.variables)
  assert len(flat) == len(mapped) == len(keys) - len(ignored - {"head.kernel"})
  assert conversion.info["stage_widths"] == [64, 128, 256, 512]
  assert flat[("params", "head_dense", "kernel")].shape == (25088, 512)
  assert flat[("params", "stem_conv", "kernel")].shape == (3, 3, 3, 64)


def test_whisper_tiny_key_lists_openai_and_hf_are_fully_covered(reference_facts):
  openai = _key_list(reference_facts, "whisper_tiny_encoder_state_dict.json")
  hf = _key_list(reference_facts, "whisper_tiny_encoder_state_dict_hf.json")
  for raw, fmt in [({"dims": {"n_mels": 80, "n_audio_head": 6},
                     "model_state_dict": _zeros(openai)}, "openai"),
                   (_zeros(hf), "huggingface"), (_zeros(hf, "model."), "huggingface")]:
    conversion = checkpoints.convert_whisper("tiny", raw=raw)
    assert conversion.info["format"] == fmt
    assert conversion.info["size"] == "tiny"
    assert len(conversion.mapped) == len(openai) == 67 and not conversion.ignored
    flat = flax.traverse_util.flatten_dict(conversion.variables)
    assert flat[("params", "conv1", "kernel")].shape == (3, 80, 384)
    assert flat[("params", "blocks_3", "mlp_fc1", "kernel")].shape == (384, 1536)


def test_hf_names_rewrite_to_openai_names(reference_facts):
  openai = _key_list(reference_facts, "whisper_tiny_encoder_state_dict.json")
  hf = _key_list(reference_facts, "whisper_tiny_encoder_state_dict_hf.json")
  rewritten = {checkpoints.hf_to_openai_key(key): value for key, value in hf.items()}
  assert rewritten == openai
  mapping = _key_list(reference_facts, "whisper_openai_to_hf_encoder_key_map.json")
  mapping.pop("note")
  assert {new: old for old, new in mapping.items()} == dict(checkpoints._HF_TO_OPENAI)


def test_another_depth_names_the_first_mismatched_keys(reference_facts):
  keys = _key_list(reference_facts, "adaface_ir101_state_dict.json")
  with pytest.raises(checkpoints.CheckpointMismatchError) as error:
    checkpoints.convert_adaface("ir101.ckpt", "ir_50", raw={"state_dict": _zeros(keys, "model.")})
  message = str(error.value)
  assert "does not fit IResNet ir_50" in message and "49 residual units, which is ir_101" in message
  assert "body.24.res_layer.0.weight" in message  # first unexpected unit beyond IR-50
  assert "body.16.shortcut_layer.0.weight" in message
  assert "mis-shaped" in message and "missing" in message
  assert len(error.value.unexpected) > 300 and error.value.misshaped


def test_mismatch_report_lists_every_category_at_once():
  with pytest.raises(checkpoints.CheckpointMismatchError) as error:
    checkpoints.convert_state_dict(
        {"input_layer.0.weight": np.zeros((64, 3, 5, 5)), "bogus.weight": np.zeros(3),
         "input_layer.2.gamma": np.zeros(64)},
        {("params", "stem_conv", "kernel"): (3, 3, 3, 64),
         ("params", "stem_prelu", "negative_slope"): (64,)},
        checkpoints.ADAFACE_RULES, source="f.ckpt", model="m")
  assert error.value.missing == ["params/stem_prelu/negative_slope"]
  assert error.value.unexpected == ["bogus.weight", "input_layer.2.gamma"]
  assert "input_layer.0.weight" in error.value.misshaped[0]


def test_restricted_reader_loads_lightning_checkpoint_without_running_code(adaface_ckpt):
  assert adaface_ckpt["epoch"] == 25
  state_dict = adaface_ckpt["state_dict"]
  assert state_dict["model.input_layer.0.weight"].shape == (8, 3, 3, 3)
  assert state_dict["model.input_layer.1.num_batches_tracked"] == 1234
  hyper = adaface_ckpt["hyper_parameters"]  # a dict subclass from a class we never import
  assert isinstance(hyper, torch_pickle.OpaqueObject) and hyper.dict_items["arch"] == "ir_18"
  (callback_class, callback_state), = adaface_ckpt["callbacks"].items()
  assert callback_class.qualified_name.endswith("ModelCheckpoint")
  assert float(callback_state["best_model_score"]) == pytest.approx(0.97)
  io_arrays = np.load(FIXTURES / "adaface_io.npz")
  np.testing.assert_array_equal(adaface_ckpt["extra_views"]["transposed"],
                                io_arrays["view_transposed"])
  np.testing.assert_array_equal(adaface_ckpt["extra_views"]["sliced"], io_arrays["view_sliced"])


@pytest.fixture(scope="module")
def adaface_ckpt():
  return torch_pickle.load(FIXTURES / "adaface_ir18_reduced.ckpt", use_torch=False)


def _torch_like_zip(path: pathlib.Path, payload: bytes) -> pathlib.Path:
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("archive/data.pkl", payload)
    archive.writestr("archive/version", "3\n")
  return path


class _Exploit:
  def __init__(self, function, *args):
    self.function, self.args = function, args

  def __reduce__(self):
    return self.function, self.args


@pytest.mark.parametrize("function,args", [
    (os.system, ("touch {marker}",)),
    (eval, ("open({marker!r}, 'w')",)),
    (exec, ("open({marker!r}, 'w')",)),
])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, function, args):
  marker = tmp_path / "pwned"
  args = tuple(arg.format(marker=str(marker)) for arg in args)
  payload = pickle.dumps({"state_dict": {"w": _Exploit(function, *args)}}, protocol=2)
  path = _torch_like_zip(tmp_path / "evil.ckpt", payload)
  with pytest.raises(torch_pickle.UnsafeCheckpointError, match="refusing to call"):
    torch_pickle.load(path, use_torch=False)
  assert not marker.exists()
  # The CLI reports it as an error, no traceback.
  assert convert.main(["--adaface", str(path), "--arch", "ir_18", "--out",
                       str(tmp_path / "out"), "--torch", "no"]) == 2
  assert not marker.exists()


def _tensor_pickle(numel: int) -> bytes:
  """Protocol-2 bytes of torch._utils._rebuild_tensor_v2 over storage '0', as torch writes."""
  def short(text):
    return b"X" + len(text).to_bytes(4, "little") + text.encode()
  return (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(" + b"(" + short("storage") +
          b"ctorch\nFloatStorage\n" + short("0") + short("cpu") + b"K\x04tQ" + b"K\x00" +
          b"K" + bytes([numel]) + b"\x85" + b"K\x01\x85" + b"\x89" +
          b"ccollections\nOrderedDict\n)R" + b"tR.")


def test_tensor_views_outside_their_storage_are_refused(tmp_path):
  for numel, ok in ((4, True), (16, False)):
    path = tmp_path / f"t{numel}.pt"
    with zipfile.ZipFile(path, "w") as archive:
      archive.writestr("t/data.pkl", _tensor_pickle(numel))
      archive.writestr("t/data/0", np.arange(4, dtype="<f4").tobytes())
    if ok:
      np.testing.assert_array_equal(torch_pickle.load(path, use_torch=False), [0, 1, 2, 3])
    else:
      with pytest.raises(pickle.UnpicklingError, match="outside its storage"):
        torch_pickle.load(path, use_torch=False)


def test_legacy_or_foreign_files_get_a_clear_error(tmp_path):
  # A plain pickle is neither torch's zip nor its legacy format (whose real files, written by
  # torch itself, are in tests/test_checkpoint_writer_matrix.py).
  path = tmp_path / "plain.pkl"
  path.write_bytes(pickle.dumps({"a": 1}))
  with pytest.raises(ValueError, match="is not a PyTorch checkpoint"):
    torch_pickle.load(path, use_torch=False)
  with pytest.raises(FileNotFoundError):
    torch_pickle.load(tmp_path / "absent.pt", use_torch=False)
  path = _torch_like_zip(tmp_path / "plain.pt", pickle.dumps({"epoch": (1, 2.5)}, protocol=2))
  assert torch_pickle.load(path, use_torch=False) == {"epoch": (1, 2.5)}


def test_convert_cli_and_orbax_round_trip(tmp_path, capsys):
  out = tmp_path / "adaface"
  assert convert.main(["--adaface", str(FIXTURES / "adaface_ir18_reduced.ckpt"), "--arch",
                       "ir_18", "--out", str(out), "--torch", "no"]) == 0
  printed = capsys.readouterr().out
  assert "input_layer.0.weight (8, 3, 3, 3) -> params/stem_conv/kernel (3, 3, 3, 8)" in printed
  assert "mapped 149 tensors; ignored 31" in printed
  variables, info = checkpoints.restore(out)
  assert info["arch"] == "ir_18" and info["stage_widths"] == [8, 16, 32, 48]
  direct = checkpoints.convert_adaface(FIXTURES / "adaface_ir18_reduced.ckpt", "ir_18",
                                       use_torch=False)
  jax.tree_util.tree_map(np.testing.assert_array_equal, variables, direct.variables)

  out = tmp_path / "whisper"
  assert convert.main(["--whisper", str(FIXTURES / "whisper_reduced_hf"), "--out", str(out),
                       "--quiet"]) == 0
  variables, info = checkpoints.restore(out)
  assert (info["format"], info["width"], info["num_heads"], info["context"]) == (
      "huggingface", 64, 4, 100)
  assert variables["params"]["positional_embedding"].shape == (100, 64)


def test_convert_cli_wrong_depth_exits_with_the_key_report(tmp_path, capsys):
  code = convert.main(["--adaface", str(FIXTURES / "cvlface_ir50_reduced.safetensors"),
                       "--arch", "ir_18", "--out", str(tmp_path / "x")])
  assert code == 2  # an input error (data.cli_errors)
  error = capsys.readouterr().err
  assert "24 residual units, which is ir_50" in error
  assert "body.3.shortcut_layer.0.weight" in error  # IR-50 has a shortcut conv where IR-18 not
  assert not (tmp_path / "x").exists()


def test_insert_pretrained_fills_both_face_networks_and_audio():
  adaface = checkpoints.convert_adaface(FIXTURES / "adaface_ir18_reduced.ckpt", "ir_18",
                                        use_torch=False)
  whisper_conv = checkpoints.convert_whisper(FIXTURES / "whisper_reduced.pt", use_torch=False)
  face = dict(embed_dim=8, arch="ir_18", stage_widths=(8, 16, 32, 48), stem_width=8,
              face_embedding_dim=32, temporal_width=16, temporal_depth=1, temporal_heads=2,
              max_frames=2)
  model = detector.InconsistencyDetector(
      identity_encoder=detector.IdentityEncoder(**face),
      visual_encoder=detector.IdentityEncoder(**face),
      audio_encoder=detector.AudioEncoder(
          embed_dim=8, whisper_width=64, whisper_heads=4, whisper_layers=2, whisper_context=100,
          temporal_width=16, temporal_depth=1, temporal_heads=2, max_tokens=100))
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 2, 112, 112, 3)),
                          jnp.zeros((1, 40, 80)))
  variables = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  filled = checkpoints.insert_pretrained(variables, adaface=adaface.variables,
                                         whisper_variables=whisper_conv.variables)
  for network in ("identity_encoder", "visual_encoder"):
    np.testing.assert_array_equal(
        filled["params"][network]["backbone"]["head_dense"]["kernel"],
        adaface.variables["params"]["head_dense"]["kernel"])
    np.testing.assert_array_equal(filled["batch_stats"][network]["backbone"]["stem_bn"]["var"],
                                  adaface.variables["batch_stats"]["stem_bn"]["var"])
  np.testing.assert_array_equal(filled["params"]["audio_encoder"]["whisper"]["conv2"]["kernel"],
                                whisper_conv.variables["params"]["conv2"]["kernel"])
  assert not np.any(filled["params"]["audio_encoder"]["temporal"]["input_projection"]["kernel"])

  other = checkpoints.convert_adaface(FIXTURES / "cvlface_ir50_reduced.safetensors", "ir_50",
                                      use_torch=False)
  with pytest.raises(checkpoints.CheckpointMismatchError, match="identity_encoder/backbone"):
    checkpoints.insert_pretrained(variables, adaface=other.variables)
