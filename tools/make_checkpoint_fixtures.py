"""Writes the checkpoint writer matrix (tests/fixtures/checkpoints) with the REAL writers.

Every fixture is written by the library that writes released checkpoints (pickle, dill, dm-haiku,
jax, numpy, torch, pytorch-lightning), at the versions named in its file name, each in its own
throwaway environment OUTSIDE the project's .venv. Nothing here imports the project.

  python3.11 tools/make_checkpoint_fixtures.py --setup      # venvs under /tmp/venvs (once)
  python3.11 tools/make_checkpoint_fixtures.py              # all writers -> the fixtures

``--setup`` creates one venv per tools/requirements-checkpoint-fixtures-<env>.txt (the Python
named in its first line) and installs the pure-Python overlays of OVERLAYS (one directory per
dill version, the 2020 dm-haiku sources) with ``pip install --target``. The default run starts
this script once per writer (``--writer NAME``) in its environment, PYTHONPATH pointing at its
overlay, then compresses every file with xz (the tiny MMV trees keep the released 512-wide
embedding heads, ~1.9 MB raw, a few tens of KB compressed) and writes MANIFEST.json: per file
the writer, its versions, the sha256 of the raw bytes and what the converter must do (accept /
refuse / legacy).

Haiku side: a reduced MMV tree (tiny_layout.json: the released x1 trees' module and parameter
names, block 0 of each unit, channels / 64) with deterministic values recorded in
haiku_expected.npz. Torch side: AdaFace's Lightning layout (``model.`` IResNet-18 at tiny
widths + ``head.kernel``) trained two SGD steps by a real Lightning Trainer with MultiStepLR,
parameters that share one storage and non-contiguous views; its final state dict is recorded
in adaface_expected_<env>.npz. Payload files put an ``os.system`` / ``builtins.eval`` call in
every position; the command only touches a marker file in the working directory.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import zlib

TOOLS = pathlib.Path(__file__).resolve().parent
VENVS = pathlib.Path("/tmp/venvs")
MARKER = "PAYLOAD_RAN"  # payloads touch this file in the current directory
# Pure-Python overlays installed with pip --target: name -> requirement.
OVERLAYS = {f"dill-{v}": f"dill=={v}" for v in ("0.3.1.1", "0.3.4", "0.3.5.1", "0.3.6", "0.4.1")}
OVERLAYS["haiku-0.0.1"] = "dm-haiku==0.0.1"
# Writer -> (environment, overlay or None).
WRITERS = {
    "haiku_py38": ("haiku-py38", None),
    "haiku_py38_haiku001": ("haiku-py38", "haiku-0.0.1"),
    "haiku_np1": ("haiku-np1", None),
    "haiku_np2": ("haiku-np2", None),
    "torch_old": ("torch-old", None),
    "torch_new": ("torch-new", None),
}
for _version in ("0.3.1.1", "0.3.4", "0.3.5.1", "0.3.6"):
  WRITERS[f"dill_py38_{_version}"] = ("haiku-py38", f"dill-{_version}")
for _version in ("0.3.6", "0.4.1"):
  WRITERS[f"dill_np1_{_version}"] = ("haiku-np1", f"dill-{_version}")
WRITERS["dill_np2_0.4.1"] = ("haiku-np2", "dill-0.4.1")


# ------------------------------------------------------------------------------ setup


def setup():
  for requirements in sorted(TOOLS.glob("requirements-checkpoint-fixtures-*.txt")):
    env = requirements.stem[len("requirements-checkpoint-fixtures-"):]
    python = requirements.read_text().splitlines()[0].split("python:")[1].strip()
    venv = VENVS / f"ckpt-{env}"
    if not (venv / "bin" / "python").exists():
      subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "-r",
                    str(requirements)], check=True)
  for name, requirement in OVERLAYS.items():
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(VENVS / name), requirement], check=True)


def run_all(out: pathlib.Path):
  raw = out / "raw"
  shutil.rmtree(raw, ignore_errors=True)
  raw.mkdir(parents=True)
  entries = {}
  for writer, (env, overlay) in WRITERS.items():
    environment = dict(os.environ, PYTHONPATH=str(VENVS / overlay) if overlay else "")
    environment.pop("PYTHONHOME", None)
    subprocess.run([str(VENVS / f"ckpt-{env}" / "bin" / "python"), __file__, "--writer", writer,
                    "--out", str(raw)], check=True, env=environment, cwd=str(TOOLS.parent))
    part = json.loads((raw / f"{writer}.json").read_text())
    (raw / f"{writer}.json").unlink()
    entries.update(part)
  for old in out.glob("*.xz"):
    old.unlink()
  for name, entry in entries.items():
    data = (raw / name).read_bytes()
    entry["sha256"] = hashlib.sha256(data).hexdigest()
    entry["bytes"] = len(data)
    (out / f"{name}.xz").write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
  for name in ("haiku_expected.npz", "adaface_expected_torch-old.npz",
               "adaface_expected_torch-new.npz"):
    (out / f"{name}.xz").write_bytes(lzma.compress((raw / name).read_bytes(), preset=9))
  shutil.rmtree(raw)
  manifest = {"generator": "tools/make_checkpoint_fixtures.py", "marker": MARKER,
              "files": dict(sorted(entries.items()))}
  (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
  total = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
  print(f"wrote {len(entries)} files to {out} ({total / 1024:.0f} KiB)")


# ------------------------------------------------------------------------------ haiku side


def tiny_tree(np, layout_path: pathlib.Path):
  """{'params'|'state': {module: {name: array}}} with values a function of the name only."""
  layout = json.loads(layout_path.read_text())
  tree = {}
  for part, modules in layout.items():
    tree[part] = {}
    for module, entries in modules.items():
      tree[part][module] = {}
      for name, (shape, dtype) in entries.items():
        salt = zlib.crc32(f"{part}:{module}:{name}".encode()) % 251
        size = 1
        for extent in shape:
          size *= extent
        if dtype.startswith("int"):
          value = np.asarray(1000 + salt, dtype).reshape(shape)
        else:
          pattern = ((np.arange(size) * 7919 + salt) % 251 - 125) / 64.0
          value = pattern.astype(dtype).reshape(shape)
        tree[part][module][name] = value
  return tree


def _versions():
  versions = {"python": sys.version.split()[0]}
  for module in ("numpy", "jax", "jaxlib", "haiku", "dill", "torch", "pytorch_lightning"):
    try:
      imported = __import__(module)
      versions[module] = getattr(imported, "__version__", "?")
    except ImportError:
      pass
  return versions


def _import_haiku_001_data_structures():
  """dm-haiku 0.0.1's data_structures module, imported without the rest of that haiku (whose
  named_call needs a 2020 jax); its classes keep their real module path."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  import types  # pylint: disable=g-import-not-at-top
  root = next(pathlib.Path(p) for p in sys.path if (pathlib.Path(p) / "haiku").is_dir()
              and "haiku-0.0.1" in p) / "haiku"
  for name, path in (("haiku", root), ("haiku._src", root / "_src")):
    package = types.ModuleType(name)
    package.__path__ = [str(path)]
    sys.modules[name] = package
  for name in ("utils", "data_structures"):
    spec = importlib.util.spec_from_file_location(f"haiku._src.{name}",
                                                  root / "_src" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
  return sys.modules["haiku._src.data_structures"]


class _Payload:
  """Pickles as a call of ``function(argument)``: os.system / builtins.eval."""

  def __init__(self, function, argument):
    self.function, self.argument = function, argument

  def __reduce__(self):
    return self.function, (self.argument,)


def _system_payload():
  return _Payload(os.system, f"touch {MARKER}")


def _eval_payload():
  return _Payload(eval, f"open({MARKER!r}, 'w').close()")


def write_haiku(writer: str, out: pathlib.Path) -> dict:
  import numpy as np  # pylint: disable=g-import-not-at-top
  tree = tiny_tree(np, TOOLS.parent / "tests" / "fixtures" / "checkpoints" / "tiny_layout.json")
  versions = _versions()
  entries = {}

  def emit(name, data, accept=True, container="dict", arrays="numpy", notes="", refuses=""):
    (out / name).write_bytes(data)
    entries[name] = {"writer": writer, "versions": versions, "container": container,
                     "arrays": arrays, "expect": "accept" if accept else "refuse",
                     "refusal": refuses, "notes": notes}

  if writer == "haiku_np1":
    # The expected values, recorded once.
    recorded = {f"{part}|{module}|{name}": value for part, modules in tree.items()
                for module, entries_ in modules.items() for name, value in entries_.items()}
    np.savez(out / "haiku_expected.npz", **recorded)
  if writer.startswith("haiku_py38_haiku001"):
    data_structures = _import_haiku_001_data_structures()
    frozen = {part: data_structures.to_immutable_dict(modules) for part, modules in tree.items()}
    for protocol in (2, 4):
      emit(f"mmv_haiku0.0.1_frozendict_pickle_p{protocol}.pkl",
           pickle.dumps(frozen, protocol=protocol), container="haiku 0.0.1 frozendict")
    # 0.0.1's FlatMapping pickles as an object holding _leaves and a jax PyTreeDef.
    flat_mapping = {part: data_structures.FlatMapping.from_mapping(modules)
                    for part, modules in tree.items()}
    try:
      data = pickle.dumps(flat_mapping, protocol=4)
    except Exception as error:  # pylint: disable=broad-except
      print(f"haiku 0.0.1 FlatMapping cannot be pickled here: {type(error).__name__}: {error}")
    else:
      emit("mmv_haiku0.0.1_flatmapping_treedef_pickle_p4.pkl", data,
           container="haiku 0.0.1 FlatMapping (_leaves + PyTreeDef)")
    return entries

  import haiku as hk  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  versions["haiku"] = hk.__version__
  tag = f"haiku{hk.__version__}"

  def flat(modules):  # what haiku's init / to_immutable_dict returned at that version
    return hk.data_structures.to_immutable_dict(modules)

  container = f"haiku {hk.__version__} {type(flat(tree['params'])).__name__}"
  if writer.startswith("dill_"):
    import dill  # pylint: disable=g-import-not-at-top
    versions["dill"] = dill.__version__
    tagged = {part: flat(modules) for part, modules in tree.items()}
    for protocol in sorted({2, dill.settings["protocol"]}):
      emit(f"mmv_dill{dill.__version__}_py{sys.version_info[0]}{sys.version_info[1]}_np"
           f"{np.__version__.split('.')[0]}_p{protocol}.pkl",
           dill.dumps(tagged, protocol=protocol), container=container)
    if writer == "dill_py38_0.3.1.1" or writer == "dill_np2_0.4.1":
      # dill writes os.system (a builtin of the posix module) as
      # _get_attr(_import_module('posix'), 'system') (0.3.1-0.3.5) or a global (later).
      evil = {"params": {"m": {"w": _system_payload()}}, "state": {}}
      emit(f"payload_dill{dill.__version__}_system_in_params.pkl", dill.dumps(evil, protocol=2),
           accept=False, refuses="posix")

      class _GetAttrEval:
        """Pickled by dill as _get_attr(_import_module('builtins'), 'eval')."""

        def __reduce__(self):
          get_attr = dill._dill._get_attr  # pylint: disable=protected-access
          return get_attr, (sys.modules["builtins"], "eval")

        def __call__(self, *args):
          raise AssertionError("never called while pickling")

      evil = {"params": {"m": {"w": _Payload(_GetAttrEval(), f"open({MARKER!r}, 'w').close()")}}}
      emit(f"payload_dill{dill.__version__}_getattr_eval.pkl", dill.dumps(evil, protocol=2),
           accept=False, refuses="_import_module('builtins')")
    return entries

  # Plain pickle, arrays as haiku's init left them (jax arrays of that jax) and as numpy.
  jax_tree = jax.tree_util.tree_map(jax.numpy.asarray, tree)
  py = f"py{sys.version_info[0]}{sys.version_info[1]}"
  numpy_major = np.__version__.split(".")[0]
  # Every protocol from the 2020 writer (haiku 0.0.3); the newer writers at 2 and their newest.
  protocols = (range(2, pickle.HIGHEST_PROTOCOL + 1) if writer == "haiku_py38"
               else (2, pickle.HIGHEST_PROTOCOL))
  array_class = type(jax_tree["params"][next(iter(tree["params"]))]["w"]).__name__
  for protocol in protocols:
    tagged = {part: flat(modules) for part, modules in jax_tree.items()}
    emit(f"mmv_{tag}_jax{jax.__version__}_{py}_np{numpy_major}_pickle_p{protocol}.pkl",
         pickle.dumps(tagged, protocol=protocol), container=container,
         arrays=f"jax {jax.__version__} {array_class}")
  emit(f"mmv_{tag}_{py}_np{numpy_major}_numpy_dict_p4.pkl", pickle.dumps(tree, protocol=4),
       container="dict")
  from haiku._src import data_structures  # pylint: disable=g-import-not-at-top
  if hasattr(data_structures, "frozendict"):
    frozen = {part: data_structures.frozendict(
        {module: data_structures.frozendict(entries_) for module, entries_ in modules.items()})
              for part, modules in tree.items()}
    emit(f"mmv_{tag}_frozendict_{py}_np{numpy_major}_p2.pkl", pickle.dumps(frozen, protocol=2),
         container=f"haiku {hk.__version__} frozendict")
  if writer == "haiku_np1":
    # Payloads by plain pickle in every position of a haiku tree.
    wrapped = {part: flat(modules) for part, modules in tree.items()}
    emit("payload_pickle_top_level.pkl", pickle.dumps(_system_payload(), protocol=4),
         accept=False, refuses="posix.system")
    evil = dict(wrapped, state=flat({"m": {"hidden": _system_payload()}}))
    emit("payload_pickle_in_flatmapping_state.pkl", pickle.dumps(evil, protocol=2),
         accept=False, refuses="posix.system")
    evil = dict(wrapped, params={"m": {"w": _eval_payload()}})
    emit("payload_pickle_eval_in_params.pkl", pickle.dumps(evil, protocol=4),
         accept=False, refuses="builtins.eval")
  return entries


# ------------------------------------------------------------------------------ torch side


def write_torch(writer: str, out: pathlib.Path) -> dict:
  import numpy as np  # pylint: disable=g-import-not-at-top
  import pytorch_lightning as pl  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top

  env = WRITERS[writer][0]
  tag = f"torch{torch.__version__.split('+')[0]}_pl{pl.__version__}"
  versions = _versions()
  entries = {}
  torch.manual_seed(0)

  def emit(name, accept=True, refuses="", notes="", legacy=False):
    entries[name] = {"writer": writer, "versions": versions,
                     "expect": "legacy" if legacy else ("accept" if accept else "refuse"),
                     "refusal": refuses, "notes": notes}

  class Unit(nn.Module):
    """AdaFace's BasicBlockIR: BN, conv3x3, BN, PReLU, conv3x3 (stride), BN + shortcut."""

    def __init__(self, cin, cout, stride):
      super().__init__()
      if cin == cout:
        self.shortcut_layer = nn.MaxPool2d(1, stride)
      else:
        self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))
      self.res_layer = nn.Sequential(
          nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
          nn.PReLU(cout), nn.Conv2d(cout, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
      return self.res_layer(x) + self.shortcut_layer(x)

  class Backbone(nn.Module):
    """AdaFace net.Backbone((112, 112), 18, 'ir') key layout at widths (2, 4, 6, 8), emb 4."""

    def __init__(self, widths=(2, 4, 6, 8), embedding=4):
      super().__init__()
      self.input_layer = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False),
                                       nn.BatchNorm2d(widths[0]), nn.PReLU(widths[0]))
      units, cin = [], widths[0]
      for width in widths:
        for index in range(2):
          units.append(Unit(cin, width, 2 if index == 0 else 1))
          cin = width
      self.body = nn.Sequential(*units)
      self.output_layer = nn.Sequential(nn.BatchNorm2d(cin), nn.Dropout(0.4), nn.Flatten(),
                                        nn.Linear(cin * 7 * 7, embedding),
                                        nn.BatchNorm1d(embedding, affine=False))

    def forward(self, x):
      x = self.output_layer(self.body(self.input_layer(x)))
      return x / torch.norm(x, 2, 1, True)

  class Trainer(pl.LightningModule):
    """AdaFace's train_val.Trainer layout: self.model, self.head (kernel), SGD + MultiStepLR."""

    def __init__(self, **hparams):
      super().__init__()
      self.save_hyperparameters()
      self.model = Backbone()
      self.head = nn.Module()
      self.head.kernel = nn.Parameter(torch.randn(4, 3) * 0.1)

    def training_step(self, batch, batch_idx):
      images, labels = batch
      logits = self.model(images) @ self.head.kernel
      return nn.functional.cross_entropy(logits * 8, labels)

    def configure_optimizers(self):
      optimizer = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
      scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[12, 20, 24],
                                                       gamma=0.1)
      return [optimizer], [scheduler]

  module = Trainer(arch="ir_18", head="adaface", m=0.4, h=0.333, s=64.0, t_alpha=0.01,
                   lr=0.1, lr_milestones="12,20,24")
  images = torch.rand(8, 3, 112, 112) * 2 - 1
  labels = torch.randint(0, 3, (8,))
  loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels),
                                       batch_size=4)
  trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                       enable_model_summary=False, default_root_dir=str(out / f"pl_{env}"))
  trainer.fit(module, loader)
  # After training, the parameters are re-pointed into ONE shared storage, half of the
  # convolutions as non-contiguous (permuted) views: torch.save writes one storage with offsets
  # and strides. (Training on such views segfaulted in backward with torch 2.13 here.)
  params = [p for name, p in module.model.named_parameters()]
  shared = torch.empty(sum(p.numel() for p in params))
  offset = 0
  with torch.no_grad():
    for index, parameter in enumerate(params):
      count = parameter.numel()
      block = shared[offset:offset + count]
      if parameter.dim() == 4 and index % 2 == 0:  # OIHW stored as OHWI: a permuted view
        o, i, h, w = parameter.shape
        view = block.view(o, h, w, i).permute(0, 3, 1, 2)
      else:
        view = block.view(parameter.shape)
      view.copy_(parameter)
      parameter.data = view
      offset += count
  name = f"adaface_lightning_{tag}.ckpt"
  trainer.save_checkpoint(out / name)
  shutil.rmtree(out / f"pl_{env}", ignore_errors=True)
  state_dict = module.state_dict()
  assert any(not t.is_contiguous() for t in state_dict.values())
  assert len({t.untyped_storage().data_ptr() if hasattr(t, "untyped_storage") else
              t.storage().data_ptr() for k, t in state_dict.items()
              if k.startswith("model.") and t.dtype == torch.float32 and "running" not in k
              and "weight" in k}) == 1
  emit(name, notes="Lightning Trainer.save_checkpoint: optimizer (SGD momentum) and MultiStepLR "
                   "state (milestones Counter), hyper_parameters, callbacks, loops; model "
                   "parameters share one storage, half of the convolutions permuted views")
  np.savez(out / f"adaface_expected_{env}.npz",
           **{key: value.detach().contiguous().numpy() for key, value in state_dict.items()})
  checkpoint = torch.load(out / name, map_location="cpu", weights_only=False)
  scheduler_state = checkpoint["lr_schedulers"][0]
  entries[name]["milestones_type"] = type(scheduler_state["milestones"]).__name__

  bare = f"adaface_state_dict_{tag}.pt"
  torch.save(module.model.state_dict(), out / bare)
  emit(bare, notes="torch.save(model.state_dict()): shared storage, permuted views")
  legacy = f"adaface_state_dict_{tag}_legacy.pt"
  if torch.__version__.startswith("1."):
    torch.save(module.model.state_dict(), out / legacy, _use_new_zipfile_serialization=False)
    emit(legacy, legacy=True, notes="_use_new_zipfile_serialization=False (pre-1.6 format)")

  def payload(file_name, mutate, refuses):
    evil = torch.load(out / name, map_location="cpu", weights_only=False)
    evil = mutate(evil)
    torch.save(evil, out / file_name)
    emit(file_name, accept=False, refuses=refuses)

  payload(f"payload_{tag}_top_level.ckpt", lambda c: _system_payload(), "posix.system")

  def in_state_dict(c):
    c["state_dict"]["model.input_layer.0.weight"] = _system_payload()
    return c

  def in_hyper_parameters(c):
    c["hyper_parameters"]["arch"] = _eval_payload()
    return c

  def in_scheduler(c):
    c["lr_schedulers"][0]["milestones"] = _system_payload()
    return c

  def in_optimizer(c):
    c["optimizer_states"][0]["param_groups"][0]["lr"] = _eval_payload()
    return c

  payload(f"payload_{tag}_in_state_dict.ckpt", in_state_dict, "posix.system")
  payload(f"payload_{tag}_in_hyper_parameters.ckpt", in_hyper_parameters, "builtins.eval")
  payload(f"payload_{tag}_in_lr_scheduler.ckpt", in_scheduler, "posix.system")
  payload(f"payload_{tag}_in_optimizer.ckpt", in_optimizer, "builtins.eval")
  return entries


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default=str(TOOLS.parent / "tests" / "fixtures" / "checkpoints"),
                      type=pathlib.Path)
  parser.add_argument("--setup", action="store_true", help="create the writer environments")
  parser.add_argument("--writer", choices=sorted(WRITERS), help="(internal) run one writer")
  args = parser.parse_args()
  if args.setup:
    setup()
  elif args.writer:
    write = write_torch if args.writer.startswith("torch") else write_haiku
    entries = write(args.writer, args.out)
    (args.out / f"{args.writer}.json").write_text(json.dumps(entries, indent=1))
  else:
    run_all(args.out)


if __name__ == "__main__":
  main()
