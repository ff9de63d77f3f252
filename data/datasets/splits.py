"""The papers' split facts, and the authors' label lists bundled with the package.

The files under ``data/resources/fakeout_splits/`` are the FakeOut authors' copies: the
FaceForensics++ split json (pairs of source ids, identical to FF++'s official ``splits/``),
the DeeperForensics / FaceShifter / Celeb-DF test label lists, the DFDC filtered single-person
test list and the FF++ sequences whose YouTube audio was verified. They are read with
importlib.resources, so they work from an installed package too.
"""
from __future__ import annotations

import csv
import functools
import importlib.resources
import json
import pathlib
from typing import Iterable, Mapping

from data.datasets import base

# --- FaceForensics++ ---------------------------------------------------------------------------

# The four methods FakeOut trains on (FF++ c23), in the paper's order.
FFPP_METHODS = ("Deepfakes", "FaceSwap", "Face2Face", "NeuralTextures")
# Methods also found under manipulated_sequences/ but not in the four-method protocol.
FFPP_EXTRA_METHODS = ("FaceShifter", "DeepFakeDetection")

FACE_SWAP = "face_swap"
REENACTMENT = "reenactment"
# Face swap keeps the target's head and lips (so the target's audio fits); reenactment drives
# the target's face with the source's expressions (so the source's audio fits).
MANIPULATION_TYPE = {
    "Deepfakes": FACE_SWAP,
    "FaceSwap": FACE_SWAP,
    "FaceShifter": FACE_SWAP,
    "DeeperForensics": FACE_SWAP,
    "DeepFakeDetection": FACE_SWAP,
    "Face2Face": REENACTMENT,
    "NeuralTextures": REENACTMENT,
}
# Cross-approach protocol (FakeOut Table 3): train on one approach, test on the other.
FACE_SWAP_METHODS = ("Deepfakes", "FaceSwap")
REENACTMENT_METHODS = ("Face2Face", "NeuralTextures")

# Folder names under <root>/{original,manipulated}_sequences/.../<compression>/videos.
# FF++'s download script writes c0 as "raw".
FFPP_COMPRESSIONS = {"raw": "raw", "c0": "raw", "c23": "c23", "c40": "c40"}
FFPP_SPLITS = ("train", "val", "test")


def cross_manipulation_protocol(methods: Iterable[str] = FFPP_METHODS) -> dict[str, tuple]:
  """FakeOut Table 2 (leave one out): ``{held_out: (training methods...)}``."""
  methods = tuple(methods)
  return {held: tuple(m for m in methods if m != held) for held in methods}


def cross_approach_protocol() -> dict[str, dict[str, tuple[str, ...]]]:
  """FakeOut Table 3: ``{name: {'train': methods, 'test': methods}}``."""
  return {
      "face_swap_to_reenactment": {"train": FACE_SWAP_METHODS, "test": REENACTMENT_METHODS},
      "reenactment_to_face_swap": {"train": REENACTMENT_METHODS, "test": FACE_SWAP_METHODS},
  }


# --- DFDC ----------------------------------------------------------------------------------------

# FakeOut reports DFDC on the full public test set and on the filtered single-person subset,
# each with and without the dog-mask distractor videos (labelled real).
DFDC_SUBSETS = ("full", "filtered")
DFDC_DOG_MASK_MODES = ("include", "exclude", "only")

# --- FakeAVCeleb ---------------------------------------------------------------------------------

# (type folder, method column) -> category name as the inconsistency paper names them.
FAKEAVCELEB_CATEGORIES = {
    ("RealVideo-RealAudio", "real"): "RVRA",
    ("RealVideo-FakeAudio", "rtvc"): "RVFA",
    ("FakeVideo-RealAudio", "wav2lip"): "FVRA-WL",
    ("FakeVideo-RealAudio", "faceswap"): "FVRA-FS",
    ("FakeVideo-RealAudio", "fsgan"): "FVRA-GAN",
    ("FakeVideo-FakeAudio", "faceswap-wav2lip"): "FVFA-FS",
    ("FakeVideo-FakeAudio", "fsgan-wav2lip"): "FVFA-GAN",
    ("FakeVideo-FakeAudio", "wav2lip"): "FVFA-WL",
}
# Fake categories of the inconsistency paper's FakeAVCeleb table, in its column order, and the
# four fake-video ones its AVG-FV column averages.
FAKEAVCELEB_PAPER_CATEGORIES = ("RVFA", "FVRA-WL", "FVFA-FS", "FVFA-GAN", "FVFA-WL")
FAKEAVCELEB_FAKE_VIDEO_CATEGORIES = ("FVRA-WL", "FVFA-FS", "FVFA-GAN", "FVFA-WL")
# FakeOut's FakeAVCeleb protocol: the test videos of this many source identities and their fakes.
FAKEAVCELEB_FAKEOUT_TEST_IDENTITIES = 120

# --- KoDF ----------------------------------------------------------------------------------------

# Inconsistency paper: AUC over 1000 random draws of 276 real + 544 fake adversarial-subset
# videos, reported as mean +- std.
KODF_DRAWS = 1000
KODF_DRAW_REAL = 276
KODF_DRAW_FAKE = 544

# --- bundled resources ---------------------------------------------------------------------------

_RESOURCE_DIR = "fakeout_splits"


def _resource(name: str):
  return importlib.resources.files("data.resources") / _RESOURCE_DIR / name


def load_split_pairs(path: base.PathLike) -> list[tuple[str, str]]:
  """Reads an FF++-style split json: a list of ``[id, id]`` pairs."""
  path = pathlib.Path(path).expanduser()
  try:
    pairs = json.loads(path.read_text(encoding="utf-8"))
  except FileNotFoundError:
    raise FileNotFoundError(f"split json {str(path)!r} does not exist") from None
  except json.JSONDecodeError as e:
    raise ValueError(f"split json {str(path)!r} is not valid JSON: {e}") from None
  return _check_pairs(pairs, str(path))


def _check_pairs(pairs, where: str) -> list[tuple[str, str]]:
  if not isinstance(pairs, list) or not all(
      isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
    raise ValueError(f"{where}: expected a JSON list of [id, id] pairs like FF++'s "
                     "splits/test.json")
  return [(str(a), str(b)) for a, b in pairs]


@functools.cache
def ffpp_split_pairs(split: str) -> tuple[tuple[str, str], ...]:
  """The official FF++ split (the FakeOut authors' copy): pairs of ids for train/val/test."""
  if split not in FFPP_SPLITS:
    raise ValueError(f"FF++ split must be one of {FFPP_SPLITS}, got {split!r}")
  where = f"bundled FaceForensics_{split}.json"
  pairs = json.loads(_resource(f"FaceForensics_{split}.json").read_text(encoding="utf-8"))
  return tuple(_check_pairs(pairs, where))


def ids_of_pairs(pairs: Iterable[tuple[str, str]]) -> set[str]:
  return {i for pair in pairs for i in pair}


def fakes_of_pairs(pairs: Iterable[tuple[str, str]]) -> set[str]:
  """FF++ manipulated video names of a split: both orders of every pair (``a_b`` and ``b_a``)."""
  return {f"{a}_{b}" for a, b in pairs} | {f"{b}_{a}" for a, b in pairs}


@functools.cache
def ffpp_split_of_id() -> Mapping[str, str]:
  """``{'000': 'test', ...}`` for the 1000 FF++ source ids."""
  return {i: split for split in FFPP_SPLITS for i in ids_of_pairs(ffpp_split_pairs(split))}


@functools.cache
def proper_audio_ids() -> frozenset[str]:
  """FF++ source ids whose YouTube audio the FakeOut authors verified (enrichment allowed)."""
  ids = json.loads(_resource("FaceForensics_proper_audio_files.json").read_text("utf-8"))
  return frozenset(str(i) for i in ids)


@functools.cache
def dfdc_filtered_ids() -> frozenset[str]:
  """DFDC public-test ids of FakeOut's filtered single-person subset."""
  text = _resource("DFDC_filtered_test.txt").read_text(encoding="utf-8")
  return frozenset(line.strip().split(".")[0] for line in text.splitlines() if line.strip())


@functools.cache
def label_list(name: str) -> tuple[tuple[str, int], ...]:
  """A bundled ``<name>_labels.csv`` as ``((stem, label), ...)`` in file order, deduplicated.

  ``name`` is one of ``DeeperForensics``, ``FaceShifter``, ``Celeb_DF_v2``, ``FaceForensics``.
  """
  text = _resource(f"{name}_labels.csv").read_text(encoding="utf-8")
  seen, out = set(), []
  for row in csv.DictReader(text.splitlines()):
    stem = row["filename"].rsplit(".", 1)[0]
    if stem not in seen:
      seen.add(stem)
      out.append((stem, int(row["label"])))
  return tuple(out)
