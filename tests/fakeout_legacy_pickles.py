"""Pickles in the forms the 2020-2022 MMV/FakeOut checkpoints may take (test helper).

The classes of that time (haiku's frozendict/FlatMapping, jax's DeviceArray) no longer exist in
their old form, so stand-ins with the same module path and name are installed while pickling:
the bytes then name exactly the globals an old file names. Forms:

* 'frozendict': haiku._src.data_structures.frozendict(dict)            (early 2020)
* 'flat_dict': haiku._src.data_structures.FlatMapping(dict)            (Aug 2020 - 2021)
* 'flat_treedef': FlatMapping object holding _leaves and a jax PyTreeDef (Mar - Aug 2020)
* arrays 'reconstruct': jax.interpreters.xla.reconstruct_device_array(...)  (2021)
* arrays 'object': jaxlib.xla_extension.DeviceArray object with its numpy value (object form)
* arrays 'dill': dill._dill._create_array(numpy reduce function, args, state, None), as dill
  >= 0.3.6 writes numpy arrays (MMV's own loader uses dill; the real files of dill 0.3.1.1 -
  0.4.1 are in tests/fixtures/checkpoints)
"""
import contextlib
import copyreg
import pickle
import sys
import types

import jax
import numpy as np

_HAIKU_MODULE = "haiku._src.data_structures"
_XLA_MODULE = "jax.interpreters.xla"
_XLA_EXTENSION = "jaxlib.xla_extension"
_DILL_MODULE = "dill._dill"


class FrozenDict:
  def __init__(self, mapping):
    self._storage = dict(mapping)

  def __reduce__(self):
    return type(self), (self._storage,)


class FlatMapping:
  """Pickles as FlatMapping(dict) or, with treedef=True, as an object with a PyTreeDef."""

  def __init__(self, mapping, treedef=False):
    self._mapping, self._treedef = dict(mapping), treedef

  def __reduce_ex__(self, protocol):
    if not self._treedef:
      return type(self), (self._mapping,)
    leaves, structure = jax.tree_util.tree_flatten(self._mapping)
    return copyreg.__newobj__, (type(self),), {"_structure": structure, "_leaves": tuple(leaves)}


class DeviceArray:
  """Object form: NEWOBJ + BUILD with the numpy value in the state."""

  def __init__(self, value):
    self.value = np.asarray(value)

  def __reduce_ex__(self, protocol):
    return copyreg.__newobj__, (type(self),), {"_npy_value": self.value, "aval": None}


class ReconstructedArray:
  """2021 form: reconstruct_device_array(numpy reduce function, args, state, aval state)."""

  def __init__(self, value):
    self.value = np.asarray(value)

  def __reduce__(self):
    function, args, state = self.value.__reduce__()
    return reconstruct_device_array, (function, args, state, {"weak_type": False})


def reconstruct_device_array(function, args, state, aval_state):  # never called by the loader
  raise AssertionError("the loader must not call the pickled helper")


class DillArray:
  """dill's form: _create_array(numpy reduce function, args, state, npdict)."""

  def __init__(self, value):
    self.value = np.asarray(value)

  def __reduce__(self):
    function, args, state = self.value.__reduce__()
    return _create_array, (function, args, state, None)


def _create_array(function, args, state, npdict=None):  # never called by the loader
  raise AssertionError("the loader must not call the pickled helper")


FrozenDict.__module__ = FlatMapping.__module__ = _HAIKU_MODULE
FrozenDict.__name__ = FrozenDict.__qualname__ = "frozendict"
FlatMapping.__name__ = FlatMapping.__qualname__ = "FlatMapping"
DeviceArray.__module__ = _XLA_EXTENSION
reconstruct_device_array.__module__ = _XLA_MODULE
_create_array.__module__ = _DILL_MODULE


@contextlib.contextmanager
def legacy_classes():
  """Installs the stand-ins under their historical module paths while pickling."""
  import haiku._src.data_structures as data_structures  # pylint: disable=g-import-not-at-top
  import jax.interpreters.xla as xla  # pylint: disable=g-import-not-at-top

  saved = {name: getattr(data_structures, name) for name in ("frozendict", "FlatMapping")}
  # Stand-in modules replace whatever is installed under these names while pickling.
  saved_modules = {name: sys.modules.get(name) for name in (_XLA_EXTENSION, _DILL_MODULE)}
  extension = types.ModuleType(_XLA_EXTENSION)
  extension.DeviceArray = DeviceArray
  dill_module = types.ModuleType(_DILL_MODULE)
  dill_module._create_array = _create_array  # pylint: disable=protected-access
  try:
    data_structures.frozendict, data_structures.FlatMapping = FrozenDict, FlatMapping
    xla.reconstruct_device_array = reconstruct_device_array
    sys.modules[_XLA_EXTENSION], sys.modules[_DILL_MODULE] = extension, dill_module
    yield
  finally:
    for name, value in saved.items():
      setattr(data_structures, name, value)
    del xla.reconstruct_device_array
    for name, module in saved_modules.items():
      if module is None:
        del sys.modules[name]
      else:
        sys.modules[name] = module


def wrap(checkpoint, mapping_form="flat_dict", array_form="reconstruct"):
  """Wraps a {'params', 'state'} checkpoint's dicts and arrays in the given legacy forms."""
  array_class = {"reconstruct": ReconstructedArray, "object": DeviceArray, "dill": DillArray,
                 "numpy": None}[array_form]

  def modules_tree(modules):
    plain = {module: {name: array_class(value) if array_class else value
                      for name, value in entries.items()}
             for module, entries in modules.items()}
    if mapping_form == "flat_treedef":
      # The 2020 object form flattened the whole {module: {name: array}} tree at once.
      return FlatMapping(plain, treedef=True)
    make = {"frozendict": FrozenDict, "flat_dict": FlatMapping}[mapping_form]
    return make({module: make(entries) for module, entries in plain.items()})

  return {key: modules_tree(value) for key, value in checkpoint.items()}


def dumps(checkpoint, mapping_form="flat_dict", array_form="reconstruct", protocol=2) -> bytes:
  """An original-format pickle of ``checkpoint`` in the given legacy forms."""
  with legacy_classes():
    return pickle.dumps(wrap(checkpoint, mapping_form, array_form), protocol=protocol)
