"""Reads PyTorch checkpoints (``torch.save`` zip files) into numpy without torch and without
running code from the file.

A ``.pt``/``.ckpt``/``.bin`` file written by ``torch.save`` (PyTorch >= 1.6) is a zip archive:
``<name>/data.pkl`` is a pickle of the saved object in which every tensor is a call
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and every storage is a
persistent id ``('storage', <dtype class>, key, location, numel)`` pointing at the raw bytes in
``<name>/data/<key>``. This module unpickles ``data.pkl`` with a restricted unpickler:

* the tensor rebuild functions, storage classes and a few harmless builtins
  (``collections.OrderedDict``, ``_codecs.encode`` for protocol-2 bytes, ``torch.device``...) are
  replaced by our own numpy implementations;
* the containers torch and Lightning write besides dicts are rebuilt as inert containers:
  ``collections.Counter`` (MultiStepLR's ``milestones`` in ``lr_schedulers``) and
  ``collections.defaultdict`` (its default factory is dropped, never called) from their
  pickled items only;
* any other global may be *named* (a class used as a dict key, for example) and may be
  *instantiated without its constructor* (``NEWOBJ``, as Lightning's metadata objects are), in
  which case it becomes an inert :class:`OpaqueObject` that only records its state;
* *calling* any other global (the ``REDUCE`` opcode, e.g. ``os.system``, ``builtins.eval``,
  ``subprocess.Popen``) is refused with :class:`UnsafeCheckpointError` naming the global, before
  anything runs. Nothing from the file is ever imported or executed.

When torch happens to be installed, :func:`load` prefers ``torch.load(weights_only=True)``, and
falls back to the restricted reader when torch's allow-list refuses a metadata object. Only
PyTorch's legacy non-zip format (``_use_new_zipfile_serialization=False``, torch < 1.6) needs
torch.
"""
from __future__ import annotations

import _compat_pickle
import collections
import importlib.util
import logging
import pathlib
import pickle
import re
import zipfile
from typing import Any, Optional

import ml_dtypes
import numpy as np

log = logging.getLogger(__name__)

_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_, "ComplexFloatStorage": np.complex64,
    "ComplexDoubleStorage": np.complex128, "UntypedStorage": np.uint8,
}


class UnsafeCheckpointError(pickle.UnpicklingError):
  """The pickle asked to call something that is not a tensor constructor; nothing was run."""


class OpaqueObject:
  """Inert stand-in for an object of a class we do not import (e.g. Lightning metadata)."""

  def __init__(self, qualified_name: str):
    self.qualified_name = qualified_name
    self.state: Any = None
    self.dict_items: dict = {}
    self.list_items: list = []

  def __setstate__(self, state):
    self.state = state

  def __setitem__(self, key, value):
    self.dict_items[key] = value

  def append(self, value):
    self.list_items.append(value)

  def extend(self, values):
    self.list_items.extend(values)

  def __repr__(self):
    return f"OpaqueObject({self.qualified_name})"


class _RefuseCalls(type):
  """Metaclass of the stand-ins: naming them is fine, calling them is refused."""

  def __call__(cls, *args, **kwargs):
    raise UnsafeCheckpointError(
        f"refusing to call {cls.qualified_name}: the checkpoint asks to run code that is not a "
        "tensor constructor. Nothing was executed. If the file is trusted, load it with torch "
        "and save its state_dict again (torch.save(state_dict, path)).")


def _stand_in(module: str, name: str) -> type:
  qualified = f"{module}.{name}"

  def new(cls, *args, **kwargs):
    del args, kwargs
    return OpaqueObject(qualified)

  return _RefuseCalls(name, (), {"qualified_name": qualified, "__new__": new,
                                 "__module__": module, "__qualname__": name})


class _StorageType:
  def __init__(self, name: str):
    self.name = name
    self.dtype = np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
  """numpy twin of torch._utils._rebuild_tensor(_v2): a strided view copied into a new array."""
  del unused  # requires_grad, backward hooks, metadata
  size, stride = tuple(size), tuple(stride)
  if not size:
    return np.array(storage[storage_offset])
  if any(extent == 0 for extent in size):
    return np.zeros(size, storage.dtype)
  spans = [(extent - 1) * step for extent, step in zip(size, stride)]
  first = storage_offset + sum(span for span in spans if span < 0)
  last = storage_offset + sum(span for span in spans if span > 0)
  if not isinstance(storage, np.ndarray) or first < 0 or last >= storage.size:
    raise pickle.UnpicklingError(
        f"tensor of size {size}, stride {stride} at offset {storage_offset} lies outside its "
        f"storage of {storage.size} elements; the file is corrupt")
  item = storage.itemsize
  view = np.lib.stride_tricks.as_strided(
      storage[storage_offset:], shape=size, strides=tuple(step * item for step in stride),
      writeable=False)
  return np.array(view)


def _rebuild_parameter(data, requires_grad=None, backward_hooks=None, *unused):
  del requires_grad, backward_hooks, unused
  return data


def _rebuild_from_type_v2(function, new_type, args, state):
  del new_type, state  # a tensor subclass (Parameter): the plain array is what we want.
  return function(*args)


def _inert_counter(mapping=None, **unused):
  """collections.Counter(mapping) filled by dict.update: no arithmetic on pickled values."""
  if unused or not (mapping is None or isinstance(mapping, dict)):
    raise UnsafeCheckpointError("refusing collections.Counter with arguments other than a dict")
  counter = collections.Counter()
  dict.update(counter, mapping or {})
  return counter


def _inert_defaultdict(default_factory=None, *unused):
  """collections.defaultdict -> a plain dict: the pickled default factory is never called."""
  del default_factory
  if unused:
    raise UnsafeCheckpointError("refusing collections.defaultdict with extra arguments")
  return {}


def _codecs_encode(text, encoding="latin1"):
  if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
    raise UnsafeCheckpointError("refusing _codecs.encode with arguments other than (str, latin1)")
  return text.encode("latin1")


_ALLOWED_CALLS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "Counter"): _inert_counter,
    ("collections", "defaultdict"): _inert_defaultdict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("_codecs", "encode"): _codecs_encode,
    ("torch", "device"): lambda *args: ":".join(str(a) for a in args),
    ("torch", "Size"): tuple,
}


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickles data.pkl of a torch zip archive with the policy of the module docstring."""

  def __init__(self, file, archive: zipfile.ZipFile, prefix: str, byteorder: str):
    super().__init__(file)
    self._archive = archive
    self._prefix = prefix
    self._byteorder = "<" if byteorder == "little" else ">"
    self._storages: dict[str, np.ndarray] = {}
    self.opaque: list[str] = []

  def find_class(self, module, name):
    # Protocol-2 pickles (torch's default) name builtins as Python 2 did (__builtin__...).
    if (module, name) in _compat_pickle.NAME_MAPPING:
      module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    if (module, name) in _ALLOWED_CALLS:
      return _ALLOWED_CALLS[(module, name)]
    if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
      return _StorageType(name)
    self.opaque.append(f"{module}.{name}")
    return _stand_in(module, name)

  def persistent_load(self, pid):
    if not isinstance(pid, tuple) or not pid or pid[0] != "storage" or len(pid) != 5:
      raise pickle.UnpicklingError(f"unsupported persistent id {pid!r} (expected a torch "
                                   "storage record)")
    _, storage_type, key, _, numel = pid
    if not isinstance(storage_type, _StorageType):
      raise UnsafeCheckpointError(f"storage of unknown type {storage_type!r}")
    key = str(key)
    if key not in self._storages:
      record = f"{self._prefix}/data/{key}"
      try:
        raw = self._archive.read(record)
      except KeyError:
        raise pickle.UnpicklingError(f"storage record {record} is missing from the archive")
      dtype = storage_type.dtype.newbyteorder(self._byteorder)
      array = np.frombuffer(raw, dtype=dtype)
      if array.size < numel:
        raise pickle.UnpicklingError(f"storage {record} holds {array.size} elements, the pickle "
                                     f"says {numel}; the file is truncated")
      self._storages[key] = array.astype(storage_type.dtype.newbyteorder("="), copy=False)
    return self._storages[key]


def load_zip(path: str | pathlib.Path) -> Any:
  """Restricted, torch-free reader of a ``torch.save`` zip archive (see the module docstring)."""
  path = pathlib.Path(path)
  with zipfile.ZipFile(path) as archive:
    pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")
               or name == "data.pkl"]
    if len(pickles) != 1:
      raise pickle.UnpicklingError(f"{path}: not a torch.save archive (found data.pkl entries "
                                   f"{pickles})")
    prefix = pickles[0][:-len("/data.pkl")] if "/" in pickles[0] else ""
    byteorder = "little"
    if f"{prefix}/byteorder" in archive.namelist():
      byteorder = archive.read(f"{prefix}/byteorder").decode().strip()
    with archive.open(pickles[0]) as stream:
      unpickler = _RestrictedUnpickler(stream, archive, prefix, byteorder)
      obj = unpickler.load()
  if unpickler.opaque:
    log.info("%s: kept %d non-tensor objects inert, e.g. %s", path.name, len(unpickler.opaque),
             sorted(set(unpickler.opaque))[:5])
  return obj


def _torch_to_numpy(obj):
  import torch  # pylint: disable=g-import-not-at-top
  if isinstance(obj, torch.Tensor):
    tensor = obj.detach().cpu()
    if tensor.dtype == torch.bfloat16:
      return tensor.float().numpy().astype(ml_dtypes.bfloat16)
    return tensor.numpy().copy()
  if isinstance(obj, dict):
    return type(obj)((key, _torch_to_numpy(value)) for key, value in obj.items())
  if isinstance(obj, (list, tuple)):
    return type(obj)(_torch_to_numpy(value) for value in obj)
  return obj


def load(path: str | pathlib.Path, use_torch: Optional[bool] = None) -> Any:
  """Loads a PyTorch checkpoint as nested dicts of numpy arrays, never executing its code.

  Args:
    path: a file written by ``torch.save``.
    use_torch: True: ``torch.load(weights_only=True)`` (needs torch); False: the restricted
      zip reader; None: torch when it is installed, else the restricted reader.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"checkpoint {path} does not exist")
  if use_torch is None:
    use_torch = importlib.util.find_spec("torch") is not None
  if use_torch:
    import torch  # pylint: disable=g-import-not-at-top
    try:
      return _torch_to_numpy(torch.load(path, map_location="cpu", weights_only=True))
    except pickle.UnpicklingError as error:
      if not zipfile.is_zipfile(path):
        raise
      refused = re.search(r"Unsupported global: GLOBAL \S+", str(error))
      log.info("%s: torch's weights_only loader refused it (%s); using the restricted reader",
               path.name, refused.group(0) if refused else type(error).__name__)
  if not zipfile.is_zipfile(path):
    if is_legacy_torch_file(path):
      raise ValueError(
          f"{path.name} is in PyTorch's legacy format (torch < 1.6, "
          "_use_new_zipfile_serialization=False), which only torch reads; re-save it once: "
          "python -c \"import sys, torch; torch.save(torch.load(sys.argv[1], "
          "map_location='cpu', weights_only=True), sys.argv[1] + '.zip.pt')\" "
          f"{path}")
    raise ValueError(f"{path} is not a PyTorch checkpoint (neither a torch.save zip archive nor "
                     "PyTorch's legacy format)")
  return load_zip(path)


_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c  # torch.serialization.MAGIC_NUMBER


class _NoGlobals(pickle.Unpickler):
  def find_class(self, module, name):
    raise pickle.UnpicklingError("not the legacy header")


def is_legacy_torch_file(path: str | pathlib.Path) -> bool:
  """Whether ``path`` starts like torch's legacy (pre-zip) format: a pickled magic number."""
  with open(path, "rb") as stream:
    try:
      return _NoGlobals(stream).load() == _LEGACY_MAGIC
    except Exception:  # pylint: disable=broad-except
      return False
