"""Dataset adapters: each lists one dataset's videos (path, label, metadata) from its official
on-disk layout. The registry maps command-line names to adapters::

  from data import datasets
  listing = datasets.list_videos("ffpp", "/data/FaceForensics++", "test", {"compression": "c40"})
  for record in listing:            # base.VideoRecord
    ...

``get_adapter(name)`` gives the adapter class, ``list_datasets()`` the names. Each module's
docstring documents where to get the dataset, the layout expected under the root and the
options (``python -m data.datasets --help`` prints them).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from data.datasets import base
from data.datasets.base import DatasetLayoutError, Listing, VideoRecord  # noqa: F401
from data.datasets.celebdf import CelebDFAdapter
from data.datasets.deeperforensics import DeeperForensicsAdapter
from data.datasets.deepfaketimit import DeepfakeTIMITAdapter
from data.datasets.dfdc import DFDCAdapter
from data.datasets.faceforensics import FaceForensicsAdapter
from data.datasets.faceshifter import FaceShifterAdapter
from data.datasets.fakeavceleb import FakeAVCelebAdapter
from data.datasets.kodf import KoDFAdapter
from data.datasets.synthetic import SyntheticAdapter
from data.datasets.voxceleb2 import VoxCeleb2Adapter

_ADAPTERS: dict[str, type[base.DatasetAdapter]] = {
    cls.name: cls for cls in (
        FaceForensicsAdapter, FaceShifterAdapter, DeeperForensicsAdapter, DFDCAdapter,
        FakeAVCelebAdapter, DeepfakeTIMITAdapter, VoxCeleb2Adapter, KoDFAdapter,
        CelebDFAdapter, SyntheticAdapter)
}
_ALIASES = {
    "faceforensics": "ffpp", "faceforensics++": "ffpp", "ff++": "ffpp",
    "deeperforensics-1.0": "deeperforensics", "dfo": "deeperforensics",
    "fsh": "faceshifter", "fakeav": "fakeavceleb", "dftimit": "deepfaketimit",
    "vox2": "voxceleb2", "celeb-df": "celebdf", "celeb_df_v2": "celebdf", "synth": "synthetic",
}


def list_datasets() -> list[str]:
  """The command-line names of all adapters."""
  return sorted(_ADAPTERS)


def get_adapter(name: str) -> type[base.DatasetAdapter]:
  """The adapter class for a command-line name (or alias), e.g. ``get_adapter('ffpp')``."""
  key = name.strip().lower()
  key = _ALIASES.get(key, key)
  if key not in _ADAPTERS:
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}")
  return _ADAPTERS[key]


def parse_options(items: Sequence[str]) -> dict[str, str]:
  """``['compression=c40', 'seed=1']`` -> ``{'compression': 'c40', 'seed': '1'}``."""
  options = {}
  for item in items:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
      raise ValueError(f"option {item!r}: expected KEY=VALUE")
    options[key.strip()] = value.strip()
  return options


def build(name: str, root: base.PathLike,
          options: Optional[Mapping[str, Any]] = None) -> base.DatasetAdapter:
  """An adapter instance; string option values are converted by the adapter's signature."""
  return base.build_adapter(get_adapter(name), root, options)


def list_videos(name: str, root: base.PathLike, split: str,
                options: Optional[Mapping[str, Any]] = None) -> base.Listing:
  """``build(name, root, options).list_videos(split)``."""
  return build(name, root, options).list_videos(split)
