"""Released-checkpoint writer matrix: files written by the REAL writers, through both converters.

tests/fixtures/checkpoints holds files written by tools/make_checkpoint_fixtures.py with real
pickle / dill / dm-haiku / jax / numpy / torch / pytorch-lightning at the versions in
MANIFEST.json (xz-compressed; the raw bytes' sha256 is checked). Every benign file must convert
with the command's main() and give exactly the values the generator recorded; every payload
(os.system / builtins.eval in every position) must be refused with nothing executed.
"""
import hashlib
import json
import lzma
import pathlib
import pickle
import re
import subprocess
import sys
import zipfile

import jax
import numpy as np
import pytest

from fakeout_jax import checkpoints as fakeout_checkpoints
from fakeout_jax import convert as fakeout_convert
from inconsistency_jax import checkpoints as inconsistency_checkpoints
from inconsistency_jax import convert as inconsistency_convert
from inconsistency_jax import torch_pickle

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "checkpoints"
MANIFEST = json.loads((FIXTURES / "MANIFEST.json").read_text())
FILES = MANIFEST["files"]
MARKER = MANIFEST["marker"]
TINY_CONFIG = str(FIXTURES / "tiny_model_config.py")


def _select(suffixes, expect):
  return sorted(name for name, entry in FILES.items()
                if name.endswith(suffixes) and entry["expect"] == expect)


HAIKU_ACCEPT = _select((".pkl",), "accept")
# The command (with its orbax write, ~2 s a file) runs in the default suite on one file per
# writer environment; on the others too with -m slow. Every file's values are checked fast.
_FIRST_PER_WRITER = {FILES[name]["writer"]: name for name in reversed(HAIKU_ACCEPT)}
HAIKU_COMMAND = [name if name in _FIRST_PER_WRITER.values()
                 else pytest.param(name, marks=pytest.mark.slow) for name in HAIKU_ACCEPT]
HAIKU_REFUSE = _select((".pkl",), "refuse")
TORCH_ACCEPT = _select((".ckpt", ".pt"), "accept")
TORCH_REFUSE = _select((".ckpt", ".pt"), "refuse")
TORCH_LEGACY = _select((".ckpt", ".pt"), "legacy")


@pytest.fixture(scope="module")
def raw_files(tmp_path_factory):
  """Decompressed fixtures, each checked against the sha256 the generator recorded."""
  folder = tmp_path_factory.mktemp("writer_matrix")
  for name in list(FILES) + ["haiku_expected.npz"] + [
      f"adaface_expected_{env}.npz" for env in ("torch-old", "torch-new")]:
    data = lzma.decompress((FIXTURES / f"{name}.xz").read_bytes())
    if name in FILES:
      assert hashlib.sha256(data).hexdigest() == FILES[name]["sha256"], name
    (folder / name).write_bytes(data)
  return folder


def _globals(data: bytes) -> set:
  """Module/name pairs a pickle names (GLOBAL and STACK_GLOBAL), read without loading it."""
  import pickletools  # pylint: disable=g-import-not-at-top
  names, strings = set(), []
  for opcode, argument, _ in pickletools.genops(data):
    if opcode.name == "GLOBAL":
      names.add(argument.replace(" ", "."))
    elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
      names.add(f"{strings[-2]}.{strings[-1]}")
    if isinstance(argument, str):
      strings.append(argument)
  return names


# ------------------------------------------------------------------------------ the matrix


def test_matrix_covers_the_released_writer_variants(raw_files):
  versions = lambda key: {entry["versions"].get(key) for entry in FILES.values()}  # noqa: E731
  pickles = [name for name in HAIKU_ACCEPT if "_pickle_p" in name]
  assert {int(name[-5]) for name in pickles} == {2, 3, 4, 5}
  assert {"0.3.1.1", "0.3.4", "0.3.5.1", "0.3.6", "0.4.1"} <= versions("dill")
  containers = " ".join(FILES[name]["container"] for name in HAIKU_ACCEPT)
  for container in ("frozendict", "FlatMapping", "FlatMapping (_leaves + PyTreeDef)", "dict"):
    assert container in containers
  assert {version.split(".")[0] for version in versions("numpy") if version} == {"1", "2"}
  torch_versions = {version.split(".")[0] for version in versions("torch") if version}
  assert torch_versions == {"1", "2"}
  assert len(TORCH_LEGACY) == 1 and len(HAIKU_REFUSE) >= 5 and len(TORCH_REFUSE) >= 8

  # The constructs the matrix exists for are really in the files, as their writers wrote them.
  data = (raw_files / "mmv_dill0.3.1.1_py38_np1_p2.pkl").read_bytes()
  assert {"dill._dill._get_attr", "dill._dill._import_module"} <= _globals(data)
  assert b"numpy.core._multiarray_umath" in data and b"_codecs" in data
  numpy2 = [name for name in HAIKU_ACCEPT if "_np2_" in name]
  assert numpy2 and all(b"numpy._core" in (raw_files / name).read_bytes() for name in numpy2)
  lightning = [name for name in TORCH_ACCEPT if name.endswith(".ckpt")]
  assert len(lightning) == 2
  for name in lightning:
    with zipfile.ZipFile(raw_files / name) as archive:
      pickled = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    assert "collections.Counter" in _globals(pickled), name
    assert FILES[name]["milestones_type"] == "Counter"


# ------------------------------------------------------------------------------ FakeOut / MMV


def _fakeout_expected(raw_files, restored):
  expected = np.load(raw_files / "haiku_expected.npz")
  checked = 0
  for path, value in jax.tree_util.tree_leaves_with_path(restored):
    names = tuple(entry.key for entry in path)
    tree, module, name = fakeout_checkpoints.haiku_key(names[0], names[1:])
    want = expected[f"{tree}|{module}|{name}"]
    np.testing.assert_array_equal(np.asarray(value), want.reshape(np.shape(value)),
                                  err_msg="/".join(names))
    checked += 1
  return checked


@pytest.mark.parametrize("name", HAIKU_ACCEPT)
def test_fakeout_reader_and_converter_give_the_recorded_values(raw_files, name):
  """What the command does before writing, on every file: read, map onto the model, compare."""
  checkpoint = fakeout_checkpoints.load_haiku_checkpoint(raw_files / name)
  config = fakeout_convert._model_config(TINY_CONFIG)  # pylint: disable=protected-access
  config.modality, config.use_text = "video_audio", False
  shapes = fakeout_convert._variable_shapes(config.to_json())  # pylint: disable=protected-access
  variables, report = fakeout_checkpoints.convert(checkpoint, shapes)
  assert report.ok and len(report.mapped) == 281 and len(report.dropped) == 7
  assert _fakeout_expected(raw_files, variables) == 281


@pytest.mark.parametrize("name", HAIKU_COMMAND)
def test_fakeout_convert_accepts_every_released_writer(raw_files, tmp_path, capsys, name):
  out = tmp_path / "converted"
  assert fakeout_convert.main(["--haiku", str(raw_files / name), "--config", TINY_CONFIG,
                               "--out", str(out)]) == 0, capsys.readouterr().err
  assert "mapped 281 entries" in capsys.readouterr().out
  assert _fakeout_expected(raw_files, fakeout_checkpoints.restore_variables(out)) == 281


@pytest.mark.parametrize("name", HAIKU_REFUSE)
def test_fakeout_convert_refuses_every_payload(raw_files, tmp_path, monkeypatch, capsys, name):
  monkeypatch.chdir(tmp_path)
  assert fakeout_convert.main(["--haiku", str(raw_files / name), "--config", TINY_CONFIG,
                               "--out", str(tmp_path / "out")]) == 2
  error = capsys.readouterr().err
  assert "refusing" in error and FILES[name]["refusal"] in error
  assert "Traceback" not in error
  assert not (tmp_path / MARKER).exists() and not (tmp_path / "out").exists()


def test_payloads_are_live(raw_files, tmp_path):
  """The refusals matter: loaded by plain pickle, a payload file does run its command."""
  script = ("import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())")
  subprocess.run([sys.executable, "-c", script, str(raw_files / "payload_pickle_top_level.pkl")],
                 cwd=tmp_path, check=False, capture_output=True, timeout=60)
  assert (tmp_path / MARKER).exists()
  (tmp_path / MARKER).unlink()
  top_level = next(name for name in TORCH_REFUSE if name.endswith("_top_level.ckpt"))
  with zipfile.ZipFile(raw_files / top_level) as archive:
    pickled = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
  (tmp_path / "data.pkl").write_bytes(pickled)
  subprocess.run([sys.executable, "-c", script, str(tmp_path / "data.pkl")], cwd=tmp_path,
                 check=False, capture_output=True, timeout=60)
  assert (tmp_path / MARKER).exists()


# ------------------------------------------------------------------------------ AdaFace (torch)


def _env(name):
  return "torch-old" if FILES[name]["versions"]["torch"].startswith("1.") else "torch-new"


@pytest.mark.parametrize("name", TORCH_ACCEPT)
def test_inconsistency_convert_accepts_every_torch_writer(raw_files, tmp_path, capsys, name):
  out = tmp_path / "converted"
  assert inconsistency_convert.main(["--adaface", str(raw_files / name), "--arch", "ir_18",
                                     "--out", str(out), "--torch", "no", "--quiet"]) == 0, (
      capsys.readouterr().err)
  restored, info = inconsistency_checkpoints.restore(out)
  assert info["stage_widths"] == [2, 4, 6, 8] and info["embedding_dim"] == 4
  recorded = dict(np.load(raw_files / f"adaface_expected_{_env(name)}.npz"))
  expected = inconsistency_checkpoints.convert_adaface(
      "recorded", "ir_18", raw={"state_dict": recorded}).variables
  flat_expected = dict(jax.tree_util.tree_leaves_with_path(expected))
  flat_restored = dict(jax.tree_util.tree_leaves_with_path(restored))
  assert flat_restored.keys() == flat_expected.keys() and len(flat_expected) > 100
  for key, value in flat_expected.items():
    np.testing.assert_array_equal(np.asarray(flat_restored[key]), value, err_msg=str(key))
  if name.endswith(".ckpt"):
    scheduler = torch_pickle.load(raw_files / name, use_torch=False)["lr_schedulers"][0]
    assert dict(scheduler["milestones"]) == {12: 1, 20: 1, 24: 1}


@pytest.mark.parametrize("name", TORCH_REFUSE)
def test_inconsistency_convert_refuses_every_payload(raw_files, tmp_path, monkeypatch, capsys,
                                                     name):
  monkeypatch.chdir(tmp_path)
  assert inconsistency_convert.main(["--adaface", str(raw_files / name), "--arch", "ir_18",
                                     "--out", str(tmp_path / "out"), "--torch", "no"]) == 2
  error = capsys.readouterr().err
  assert re.search(rf"refusing to call {re.escape(FILES[name]['refusal'])}", error), error
  assert not (tmp_path / MARKER).exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", TORCH_LEGACY)
def test_legacy_torch_format_names_the_one_line_fix(raw_files, tmp_path, capsys, name):
  assert inconsistency_convert.main(["--adaface", str(raw_files / name), "--arch", "ir_18",
                                     "--out", str(tmp_path / "out"), "--torch", "no"]) == 2
  error = capsys.readouterr().err
  assert "legacy format" in error and "_use_new_zipfile_serialization=False" in error
  assert "torch.save(torch.load(" in error and "weights_only=True" in error
  assert torch_pickle.is_legacy_torch_file(raw_files / name)
  assert not torch_pickle.is_legacy_torch_file(raw_files / TORCH_ACCEPT[0])


def test_counter_and_defaultdict_are_inert():
  """Only a dict of items rebuilds a Counter; a defaultdict's factory is never called."""
  counter = torch_pickle._ALLOWED_CALLS[("collections", "Counter")]
  assert counter({3: 1}) == {3: 1}
  with pytest.raises(torch_pickle.UnsafeCheckpointError):
    counter("abc")
  factory_calls = []
  rebuilt = torch_pickle._ALLOWED_CALLS[("collections", "defaultdict")](
      lambda: factory_calls.append(1))
  assert type(rebuilt) is dict
  with pytest.raises(KeyError):
    rebuilt["missing"]  # pylint: disable=pointless-statement
  assert not factory_calls


def _dill_get_attr_pickle(module: str, name: str) -> bytes:
  """The opcodes dill 0.3.1-0.3.4 writes for a builtin: _get_attr(_import_module(M), N)."""
  def text(value):
    encoded = value.encode()
    return pickle.BINUNICODE + len(encoded).to_bytes(4, "little") + encoded
  return (pickle.PROTO + b"\x02" + pickle.GLOBAL + b"dill._dill\n_get_attr\n" + pickle.GLOBAL
          + b"dill._dill\n_import_module\n" + text(module) + pickle.TUPLE1 + pickle.REDUCE
          + text(name) + pickle.TUPLE2 + pickle.REDUCE + pickle.STOP)


def test_dill_helpers_only_reach_the_listed_rebuilders():
  from fakeout_jax import safe_pickle  # pylint: disable=g-import-not-at-top
  rebuild = safe_pickle.loads(_dill_get_attr_pickle("numpy.core._multiarray_umath",
                                                    "_reconstruct"))
  assert rebuild is safe_pickle._NUMPY_RECONSTRUCT
  for module in ("posix", "os", "builtins", "subprocess", "numpy", "dill._dill"):
    with pytest.raises(safe_pickle.UnsafePickleError,
                       match=re.escape(f"_import_module({module!r})")):
      safe_pickle.loads(_dill_get_attr_pickle(module, "system"))
  # A listed module with an unlisted name is refused at _get_attr.
  with pytest.raises(safe_pickle.UnsafePickleError, match="'frombuffer'"):
    safe_pickle.loads(_dill_get_attr_pickle("numpy.core._multiarray_umath", "frombuffer"))
