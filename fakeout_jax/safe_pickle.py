"""A restricted unpickler for DeepMind's MMV and FakeOut's released Haiku checkpoints.

The released files are Python pickles written in 2020-2022 by dm-haiku 0.0.x and jax 0.1-0.3.
Besides plain containers and numpy arrays they may name classes of that time:

* haiku's immutable mappings, ``haiku._src.data_structures.frozendict`` (early 2020) and
  ``FlatMapping`` / ``FlatMap`` (2020-2021), pickled either as "class(dict)" or, in the
  March-August 2020 form, as an object holding ``_leaves`` and a jax ``PyTreeDef``;
* jax's device arrays (``jax.interpreters.xla.DeviceArray``, ``jaxlib.xla_extension.DeviceArray``
  and their ``reconstruct_device_array`` helpers, and today's ``jax.Array``);
* dill's forms (MMV's own loader uses dill). dill 0.3.6 and later write a numpy array through
  ``dill._dill._create_array``; older dill (measured: 0.3.1.1 and 0.3.4; 0.3.5.1 writes plain
  globals) writes the builtin functions that rebuild arrays, numpy scalars and protocol-2
  bytes as
  ``dill._dill._get_attr(dill._dill._import_module(MODULE), NAME)``, e.g.
  ``_get_attr(_import_module('numpy.core._multiarray_umath'), '_reconstruct')`` and
  ``_get_attr(_import_module('_codecs'), 'encode')``. Only the (MODULE, NAME) pairs of
  :data:`DILL_MODULE_ATTRIBUTES` are answered; ``_import_module`` of any other module and
  ``_get_attr`` of any other name are refused, and neither ever imports anything.

Every such name is answered with an inert stand-in of ours; nothing is imported from the file
and no function it names is called, except numpy's array/dtype rebuilders (object dtypes
refused). Anything else is refused with an :class:`UnsafePickleError` naming the class, so a
malicious pickle (``os.system`` and friends) never executes. After loading, the stand-ins are
turned into plain dicts and numpy arrays. tests/fixtures/checkpoints/MANIFEST.json lists the
writers (dill, haiku, jax and numpy versions) whose real files are proven to load.
"""
import _compat_pickle
import collections
import io
import pickle
from typing import Any, Dict, Tuple

import numpy as np

# ------------------------------------------------------------------------------ errors


class CheckpointError(Exception):
  """A checkpoint file cannot be read or does not fit the model; the message says why."""


class UnsafePickleError(CheckpointError):
  """The pickle names a class or function outside the allowed set."""


# ------------------------------------------------------------------------------ stand-ins


class _LegacyMapping(dict):
  """Stand-in for haiku's frozendict / FlatMapping / FlatMap; becomes a plain dict."""

  def __setstate__(self, state):
    # Default pickling of a class with __slots__ gives (None, {slot: value}).
    if isinstance(state, tuple) and len(state) == 2 and state[0] is None:
      state = state[1]
    if not isinstance(state, dict):
      raise CheckpointError(f"haiku mapping with an unknown pickled state of type "
                            f"{type(state).__name__}")
    if isinstance(state.get("_mapping"), dict):
      self.update(state["_mapping"])
    elif "_structure" in state and "_leaves" in state:
      tree = _unflatten(state["_structure"], list(state["_leaves"]))
      if not isinstance(tree, dict):
        raise CheckpointError("haiku FlatMapping whose PyTreeDef is not a dict")
      self.update(tree)
    elif "_storage" in state:
      self.update(state["_storage"])
    else:
      raise CheckpointError(f"haiku mapping with unknown pickled fields {sorted(state)}")


class _LegacyTreeDef:
  """Stand-in for a jax PyTreeDef: records its pickled state to decode it later."""
  args, state = (), None  # NEWOBJ skips __init__.

  def __init__(self, *args):
    self.args = args
    self.state = None

  def __setstate__(self, state):
    self.state = state


class _LegacyArray:
  """Stand-in for an old jax device array pickled as an object; becomes its numpy value."""
  args, kwargs, state = (), {}, None  # NEWOBJ skips __init__.

  def __init__(self, *args, **kwargs):
    self.args, self.kwargs, self.state = args, kwargs, None

  def __setstate__(self, state):
    self.state = state


class _Registry:
  """Stand-in for jax's default pytree registry referenced by a pickled PyTreeDef."""


_PYTREE_KIND_LEAF, _PYTREE_KIND_NONE, _PYTREE_KIND_TUPLE = 0, 1, 2
_PYTREE_KIND_LIST, _PYTREE_KIND_DICT = 4, 5


def _unflatten(treedef: Any, leaves: list) -> Any:
  """Rebuilds a tree of dicts/lists/tuples from a pickled PyTreeDef's post-order node list."""
  state = getattr(treedef, "state", None)
  if isinstance(state, list):  # jaxlib 0.4's pickled PyTreeDef: the node list alone
    state = (None, state)
  if not (isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], list)):
    raise CheckpointError("a jax PyTreeDef in the pickle has a state this loader cannot decode; "
                          "re-save the checkpoint with plain dicts (e.g. haiku's to_dict)")
  stack = []
  leaves = iter(leaves)
  missing = object()
  for node in state[1]:
    kind, arity, node_data = node[0], node[1], node[2]
    children = stack[len(stack) - arity:] if arity else []
    del stack[len(stack) - arity:]
    if kind == _PYTREE_KIND_LEAF:
      stack.append(next(leaves, missing))
    elif kind == _PYTREE_KIND_NONE:
      stack.append(None)
    elif kind == _PYTREE_KIND_TUPLE:
      stack.append(tuple(children))
    elif kind == _PYTREE_KIND_LIST:
      stack.append(list(children))
    elif kind == _PYTREE_KIND_DICT:
      stack.append(dict(zip(node_data, children)))
    else:
      raise CheckpointError(f"a jax PyTreeDef in the pickle holds a node of kind {kind} "
                            "(named tuple or custom class); only dicts, lists and tuples load")
  if len(stack) != 1 or next(leaves, missing) is not missing or any(
      item is missing for item in _iter_tree(stack[0])):
    raise CheckpointError("a jax PyTreeDef in the pickle does not match its leaves")
  return stack[0]


def _iter_tree(tree):
  if isinstance(tree, dict):
    tree = list(tree.values())
  if isinstance(tree, (list, tuple)):
    for item in tree:
      yield from _iter_tree(item)
  else:
    yield tree


# ------------------------------------------------------------------------------ numpy


def _safe_dtype(spec, align=False, copy=False):
  dtype = np.dtype(spec, align, copy)
  if dtype.hasobject:
    raise UnsafePickleError("refusing a numpy array of Python objects (dtype object): "
                            "checkpoints hold numeric arrays only")
  return dtype


def _array_from_numpy_reduce(function, args, array_state) -> np.ndarray:
  if function is not _NUMPY_RECONSTRUCT:
    raise UnsafePickleError(f"refusing to rebuild a device array with {function!r}")
  array = function(*args)
  array.__setstate__(array_state)
  return array


def _reconstruct_device_array(function, args, array_state, aval_state=None):
  """jax 0.2-0.4's DeviceArray / jax.Array pickle helper, without putting it on a device."""
  del aval_state  # weak_type etc.: irrelevant for stored weights.
  return _array_from_numpy_reduce(function, args, array_state)


def _dill_create_array(function, args, array_state, npdict=None):
  """dill's ndarray helper; ``npdict`` (attributes of ndarray subclasses) is dropped."""
  del npdict
  return _array_from_numpy_reduce(function, args, array_state)


def _latin1_encode(text, encoding="latin1"):
  # Protocol-2 pickles store bytes as _codecs.encode(str, 'latin1').
  if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
    raise UnsafePickleError(f"refusing _codecs.encode of a {type(text).__name__} with encoding "
                            f"{encoding!r} (protocol-2 bytes are (str, 'latin1'))")
  return text.encode("latin1")


try:
  from numpy._core import multiarray as _multiarray  # numpy >= 2
except ImportError:  # numpy 1.x
  from numpy.core import multiarray as _multiarray
_NUMPY_RECONSTRUCT = _multiarray._reconstruct  # pylint: disable=protected-access

# The builtin functions dill < 0.3.5 writes as _get_attr(_import_module(MODULE), NAME):
# numpy's array and scalar rebuilders under every module name numpy 1.x / 2.x give them, and
# the latin-1 encoder of protocol-2 bytes. Nothing else is reachable through dill's helpers.
DILL_MODULE_ATTRIBUTES: Dict[Tuple[str, str], Any] = {("_codecs", "encode"): _latin1_encode}
for _module in ("numpy.core._multiarray_umath", "numpy._core._multiarray_umath",
                "numpy.core.multiarray", "numpy._core.multiarray"):
  DILL_MODULE_ATTRIBUTES[(_module, "_reconstruct")] = _NUMPY_RECONSTRUCT
  DILL_MODULE_ATTRIBUTES[(_module, "scalar")] = _multiarray.scalar
_DILL_MODULES = frozenset(module for module, _ in DILL_MODULE_ATTRIBUTES)


class _DillModule:
  """What dill's _import_module(name) stands for: a module name; nothing is imported."""

  def __init__(self, name: str):
    self.name = name


def _dill_import_module(import_name, safe=False):
  del safe
  if not isinstance(import_name, str) or import_name not in _DILL_MODULES:
    raise UnsafePickleError(
        f"refusing dill._dill._import_module({import_name!r}): dill checkpoints may only name "
        f"the modules {sorted(_DILL_MODULES)} (numpy's array rebuilders, bytes); nothing was "
        "imported or run")
  return _DillModule(import_name)


def _dill_get_attr(module, name):
  if not isinstance(module, _DillModule):
    raise UnsafePickleError(f"refusing dill._dill._get_attr on a {type(module).__name__} "
                            "(only modules named by _import_module are allowed)")
  try:
    return DILL_MODULE_ATTRIBUTES[(module.name, name)]
  except (KeyError, TypeError):
    raise UnsafePickleError(
        f"refusing dill._dill._get_attr(_import_module({module.name!r}), {name!r}): only "
        "numpy's array/scalar rebuilders and _codecs.encode may be named this way; nothing "
        "was run") from None


_ALLOWED: Dict[Tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _safe_dtype,
    ("numpy.core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
}
for _module in ("dill._dill", "dill.dill"):
  _ALLOWED[(_module, "_create_array")] = _dill_create_array
  _ALLOWED[(_module, "_import_module")] = _dill_import_module
  _ALLOWED[(_module, "_get_attr")] = _dill_get_attr
for _module in ("haiku._src.data_structures", "haiku.data_structures"):
  for _name in ("frozendict", "FlatMapping", "FlatMap"):
    _ALLOWED[(_module, _name)] = _LegacyMapping
for _module in ("jaxlib.pytree", "jaxlib.xla_extension.pytree", "jaxlib.xla_extension",
                "jaxlib._jax.pytree", "jax._src.lib.pytree"):
  _ALLOWED[(_module, "PyTreeDef")] = _LegacyTreeDef
for _module in ("jax._src.tree_util", "jax.tree_util"):
  _ALLOWED[(_module, "default_registry")] = _Registry()
for _module in ("jax.interpreters.xla", "jax._src.device_array", "jax._src.array"):
  _ALLOWED[(_module, "reconstruct_device_array")] = _reconstruct_device_array
  _ALLOWED[(_module, "_reconstruct_array")] = _reconstruct_device_array
for _module, _name in [("jax.interpreters.xla", "DeviceArray"),
                       ("jax.interpreters.xla", "_DeviceArray"),
                       ("jax.interpreters.xla", "_CppDeviceArray"),
                       ("jax._src.device_array", "_DeviceArray"),
                       ("jax.interpreters.pxla", "ShardedDeviceArray"),
                       ("jax.interpreters.pxla", "_ShardedDeviceArray"),
                       ("jaxlib.xla_extension", "DeviceArray"),
                       ("jaxlib.xla_extension", "DeviceArrayBase"),
                       ("jaxlib.xla_extension", "Buffer"),
                       ("jaxlib.xla_extension", "ArrayImpl")]:
  _ALLOWED[(_module, _name)] = _LegacyArray


class _RestrictedUnpickler(pickle.Unpickler):

  def find_class(self, module, name):
    # Protocol 0-2 pickles may use Python 2 names (__builtin__, copy_reg): name them as today.
    if (module, name) in _compat_pickle.NAME_MAPPING:
      module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    try:
      return _ALLOWED[(module, name)]
    except KeyError:
      raise UnsafePickleError(
          f"refusing to load '{module}.{name}': a checkpoint may only hold dicts, lists, numpy "
          "arrays and the haiku/jax containers of the released MMV/FakeOut files. A pickle "
          "that names other classes or functions could run code on load, so it is not opened "
          "(if you trust it, re-save it as a dict of numpy arrays).") from None

  def persistent_load(self, pid):
    raise UnsafePickleError(f"refusing a pickle with persistent ids ({pid!r})")


# ------------------------------------------------------------------------------ clean-up


def _to_plain(value: Any, where: str = "") -> Any:
  """Stand-ins -> dicts and numpy arrays, recursively."""
  if isinstance(value, dict):
    return {key: _to_plain(item, f"{where}/{key}") for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    plain = [_to_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    return plain if isinstance(value, list) else tuple(plain)
  if isinstance(value, _LegacyArray):
    candidates = list(value.args) + list(value.kwargs.values())
    state = value.state
    if isinstance(state, tuple) and len(state) == 2 and state[0] is None:
      state = state[1]
    if isinstance(state, dict):
      candidates = [state.get("_npy_value"), state.get("_value")] + list(state.values()) + (
          candidates)
    elif state is not None:
      candidates.append(state)
    for candidate in candidates:
      if isinstance(candidate, np.ndarray):
        return candidate
    raise CheckpointError(f"an old jax device array at '{where or '/'}' holds no array data in "
                          "its pickle; the file cannot be read")
  if isinstance(value, (_LegacyTreeDef, _Registry)):
    raise CheckpointError(f"a bare jax PyTreeDef at '{where or '/'}' cannot be read")
  return value


def loads(data: bytes) -> Any:
  """Unpickles ``data`` with the restricted unpickler; returns plain dicts and numpy arrays.

  Raises UnsafePickleError for a disallowed class or function, CheckpointError for a pickle
  that cannot be rebuilt, and pickle.UnpicklingError / EOFError etc. for malformed data.
  """
  return _to_plain(_RestrictedUnpickler(io.BytesIO(data)).load())
