r"""What the paper-experiment configs (table*.py, fig*.py) share: model variants, row names, the
record sets they read and the arguments they take.

Record sets live under ``--config.data.root=ROOT``; each is the ``--out`` folder of one
``python -m data.prepare`` run::

  ROOT/ffpp/{train,val,test}      --dataset ffpp --split S               (FF++ c23, 4 methods)
  ROOT/faceshifter/test           --dataset faceshifter --split test     --option protocol=fakeout
  ROOT/deeperforensics/test       --dataset deeperforensics --split test --option ffpp_root=FFPP
  ROOT/dfdc/test                  --dataset dfdc --split test    --option dog_mask_list=DOGS.txt
  ROOT/dfdc_filtered/test         --dataset dfdc --split test    --option subset=filtered
                                                                 --option dog_mask_list=DOGS.txt
  ROOT/fakeavceleb/test           --dataset fakeavceleb --split test --option test_ids=IDS.txt
  ROOT/deepfaketimit/test         --dataset deepfaketimit --split test
                                                                 --option vidtimit_root=VIDTIMIT

:data:`PREPARE_COMMANDS` holds the full commands; the README's "Reproducing the FakeOut tables"
prints them. The DFDC dog-mask distractors (FakeOut: 215 videos, labelled real) need their id
list (``DOGS.txt``, one id per line); the adapter gives them the category ``dog_mask``, which is
how Table 7 leaves them out at evaluation time (``drop_categories``) without a second run of
the face tracker.

Audio of FF++, FaceShifter and DeeperForensics: their videos are silent; FakeOut attaches the
original YouTube audio (FF++'s ``original_youtube_videos`` download) to the sequences whose
audio the authors verified. :data:`ENRICHMENT_COMMANDS` plan it per record set
(``python -m data.datasets.enrichment ... --out PLAN.csv``) and the prepare commands apply the
plan (``--audio-plan PLAN.csv``); the others stay silent (the released code's all-zero "dummy
audio"). DFDC, FakeAVCeleb and DeepfakeTIMIT carry their own audio.

Arguments (``--config file.py:ARG``) are comma-separated tokens, each either ``key=value`` or a
bare value of one of the config's options, e.g. ``table2_cross_manipulation.py:NT,x1_v`` or
``table2_cross_manipulation.py:held_out=NeuralTextures,variant=x1_v``.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import ml_collections

from data.datasets import splits
from fakeout_jax.configs import default

# --config ARG variant -> (model backbone, modality). x2_va is FakeOut's released model.
VARIANTS = {
    "x1_v": ("tsm_resnet_x1", "video"),
    "x1_va": ("tsm_resnet_x1", "video_audio"),
    "x2_v": ("tsm_resnet_x2", "video"),
    "x2_va": ("tsm_resnet_x2", "video_audio"),
}
DEFAULT_VARIANT = "x2_va"
BACKBONE_NAMES = {"tsm_resnet_x1": "TSM-50", "tsm_resnet_x2": "TSM-50x2"}
MODALITY_NAMES = {"video": "V", "video_audio": "V&A"}

# FF++ methods as the paper's tables abbreviate them, in the paper's order.
METHOD_ABBREVIATIONS = {"Deepfakes": "DF", "FaceSwap": "FS", "Face2Face": "F2F",
                        "NeuralTextures": "NT"}
assert tuple(METHOD_ABBREVIATIONS) == splits.FFPP_METHODS

# Record sets (relative to data.root).
FFPP_TRAIN, FFPP_VAL, FFPP_TEST = "ffpp/train", "ffpp/val", "ffpp/test"
FACESHIFTER = "faceshifter/test"
DEEPERFORENSICS = "deeperforensics/test"
DFDC = "dfdc/test"
DFDC_FILTERED = "dfdc_filtered/test"
FAKEAVCELEB = "fakeavceleb/test"
DEEPFAKETIMIT = "deepfaketimit/test"
DOG_MASK_CATEGORY = "dog_mask"   # data.datasets.dfdc's category of the dog-mask distractors

# The cross-dataset test sets of Table 4 (and Fig. 5, 6, 14): test-set name -> (record set,
# the paper's column name).
CROSS_DATASET_SETS = {
    "faceshifter": (FACESHIFTER, "FSh"),
    "deeperforensics": (DEEPERFORENSICS, "DFo"),
    "dfdc": (DFDC, "DFDC"),
    "dfdc_filtered": (DFDC_FILTERED, "DFDC filtered"),
}

_PREPARE = "python -m data.prepare --dataset {dataset} --root {root} --split {split} --out {out}"
_ENRICH = ("python -m data.datasets.enrichment --dataset {dataset} --root {root} --split {split} "
           "--out ROOT/{name}.audio_plan.csv")
_PLAN = " --audio-plan ROOT/{name}.audio_plan.csv"
# Audio enrichment plans of the silent record sets (run before their prepare command).
ENRICHMENT_COMMANDS = {
    FFPP_TRAIN: _ENRICH.format(dataset="ffpp", root="FFPP", split="train", name="ffpp_train"),
    FFPP_VAL: _ENRICH.format(dataset="ffpp", root="FFPP", split="val", name="ffpp_val"),
    FFPP_TEST: _ENRICH.format(dataset="ffpp", root="FFPP", split="test", name="ffpp_test"),
    FACESHIFTER: _ENRICH.format(dataset="faceshifter", root="FFPP", split="test",
                                name="faceshifter_test") + " --option protocol=fakeout",
    DEEPERFORENSICS: _ENRICH.format(dataset="deeperforensics", root="DeeperForensics-1.0",
                                    split="test", name="deeperforensics_test")
    + " --ffpp-root FFPP",
}
PREPARE_COMMANDS = {
    FFPP_TRAIN: _PREPARE.format(dataset="ffpp", root="FFPP", split="train",
                                out="ROOT/ffpp/train") + _PLAN.format(name="ffpp_train"),
    FFPP_VAL: _PREPARE.format(dataset="ffpp", root="FFPP", split="val", out="ROOT/ffpp/val")
    + _PLAN.format(name="ffpp_val"),
    FFPP_TEST: _PREPARE.format(dataset="ffpp", root="FFPP", split="test", out="ROOT/ffpp/test")
    + _PLAN.format(name="ffpp_test"),
    FACESHIFTER: _PREPARE.format(dataset="faceshifter", root="FFPP", split="test",
                                 out="ROOT/faceshifter/test") + " --option protocol=fakeout"
    + _PLAN.format(name="faceshifter_test"),
    DEEPERFORENSICS: _PREPARE.format(dataset="deeperforensics", root="DeeperForensics-1.0",
                                     split="test", out="ROOT/deeperforensics/test")
    + " --option ffpp_root=FFPP" + _PLAN.format(name="deeperforensics_test"),
    DFDC: _PREPARE.format(dataset="dfdc", root="DFDC", split="test", out="ROOT/dfdc/test")
    + " --option dog_mask_list=DOGS.txt",
    DFDC_FILTERED: _PREPARE.format(dataset="dfdc", root="DFDC", split="test",
                                   out="ROOT/dfdc_filtered/test")
    + " --option subset=filtered --option dog_mask_list=DOGS.txt",
    FAKEAVCELEB: _PREPARE.format(dataset="fakeavceleb", root="FakeAVCeleb_v1.2", split="test",
                                 out="ROOT/fakeavceleb/test") + " --option test_ids=IDS.txt",
    DEEPFAKETIMIT: _PREPARE.format(dataset="deepfaketimit", root="DeepfakeTIMIT", split="test",
                                   out="ROOT/deepfaketimit/test")
    + " --option vidtimit_root=VIDTIMIT",
}


def parse_arg(arg: Optional[str], options: Mapping[str, Sequence[str]],
              defaults: Mapping[str, Optional[str]], aliases: Mapping[str, str] = None,
              config: str = "config") -> dict[str, Optional[str]]:
  """``'NT,x1_v'`` or ``'held_out=NT,variant=x1_v'`` -> ``{'held_out': .., 'variant': ..}``.

  Args:
    arg: the text after ':' in ``--config file.py:ARG`` (None or '' = all defaults).
    options: option name -> allowed values (a bare token is matched against these).
    defaults: option name -> value when not given (None: the option is required).
    aliases: other spellings of values (e.g. 'NT' -> 'NeuralTextures').
  """
  aliases = {k.lower(): v for k, v in (aliases or {}).items()}
  values = dict(defaults)
  given = set()

  def canonical(value: str) -> str:
    return aliases.get(value.lower(), value)

  for token in filter(None, (t.strip() for t in (arg or "").split(","))):
    key, sep, value = token.partition("=")
    if sep:
      key, value = key.strip(), canonical(value.strip())
      if key not in options:
        raise ValueError(f"{config}: unknown option {key!r} in {arg!r}; options: "
                         f"{', '.join(options)}")
    else:
      value = canonical(token)
      matches = [k for k, allowed in options.items() if value in allowed]
      if not matches:
        raise ValueError(f"{config}: {token!r} is not a value of any option; expected "
                         + "; ".join(f"{k}: {', '.join(v)}" for k, v in options.items()))
      key = matches[0]
    if value not in options[key]:
      raise ValueError(f"{config}: {key}={value!r} is not one of {', '.join(options[key])}")
    if key in given:
      raise ValueError(f"{config}: {key} given twice in {arg!r}")
    values[key] = value
    given.add(key)
  missing = [k for k, v in values.items() if v is None]
  if missing:
    raise ValueError(f"{config}: missing {', '.join(missing)} (e.g. --config "
                     f"{config}.py:{options[missing[0]][0]}); options: "
                     + "; ".join(f"{k}: {', '.join(v)}" for k, v in options.items()))
  return values


def row_name(variant: str) -> str:
  """'x2_va' -> 'FakeOut TSM-50x2 V&A' (the paper's row names)."""
  backbone, modality = VARIANTS[variant]
  return f"FakeOut {BACKBONE_NAMES[backbone]} {MODALITY_NAMES[modality]}"


def ffpp_experiment(name: str, variant: str, train_methods: Sequence[str] = splits.FFPP_METHODS
                    ) -> ml_collections.ConfigDict:
  """Fine-tuning on FF++ train (the given fake methods), validation on FF++ val (same methods).

  The validation set is restricted like the training set, so that choosing the best
  checkpoint never looks at a held-out method.
  """
  backbone, modality = VARIANTS[variant]
  c = default.base(backbone, modality)
  c.name = name
  c.data.train = default.record_set(FFPP_TRAIN, keep_methods=train_methods)
  c.data.val = default.record_set(FFPP_VAL, keep_methods=train_methods)
  return c


def test_set(path: str, cells: Sequence[str] = (), keep_methods: Sequence[str] = (),
             drop_categories: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """default.record_set plus ``drop_categories``: videos of these categories (real or fake)
  are left out of the metrics after scoring (fakeout_jax.evaluate), e.g. DFDC's dog masks."""
  record_set = default.record_set(path, keep_methods=keep_methods, cells=cells)
  record_set.drop_categories = tuple(drop_categories)
  return record_set


def cross_dataset_tests(cell: str, sets: Sequence[str] = tuple(CROSS_DATASET_SETS),
                        metric: str = "auc") -> ml_collections.ConfigDict:
  """Test sets of Table 4 filling ``cell.format(column=...)`` + ':' + metric for each.

  ``cell`` is 'table:row:{column}' with '{column}' replaced by the set's paper column.
  """
  tests = ml_collections.ConfigDict()
  for name in sets:
    path, column = CROSS_DATASET_SETS[name]
    tests[name] = test_set(path, cells=(f"{cell.format(column=column)}:{metric}",))
  return tests
