"""The paper-experiment configs: every variant builds, the protocols are the paper's, and every
cell a config fills lands in a column and row of fakeout_jax.tables' layouts."""
import pathlib

import pytest
from absl import flags
from ml_collections import config_flags

from data.datasets import splits
from fakeout_jax import configs, finetune, scoring, state, tables
from fakeout_jax.configs import paper

CONFIG_DIR = pathlib.Path(configs.__file__).parent
VARIANTS = tuple(paper.VARIANTS)
ARGS = {
    "table2_cross_manipulation.py": [f"{m},{v}" for m in splits.FFPP_METHODS for v in VARIANTS],
    "table3_cross_approach.py": [f"{d},{v}" for d in ("swap_to_reenactment",
                                                      "reenactment_to_swap") for v in VARIANTS],
    "table4_cross_dataset.py": list(VARIANTS),
    "table5_audio_visual.py": list(VARIANTS),
    "table6_intra_ffpp.py": list(VARIANTS),
    "table7_dfdc_no_dog_mask.py": list(VARIANTS),
    "fig5_linear_probe.py": [f"{m},{v}" for m in ("finetune", "linear_probe") for v in VARIANTS],
    "fig6_backbones.py": ["mmv", "imagenet", "kinetics", "scratch", "self_pretrained"],
    "fig13_audio_shift.py": ["x2_va", "x1_va"],
    "fig14_num_clips.py": list(VARIANTS),
}
ALL = [(name, arg) for name, args in ARGS.items() for arg in args]


def load(name, arg=None):
  return configs.load(f"{CONFIG_DIR / name}:{arg}" if arg else str(CONFIG_DIR / name))


def test_every_paper_config_file_is_covered():
  files = {p.name for p in CONFIG_DIR.glob("*.py") if p.name.startswith(("table", "fig"))}
  assert files == set(ARGS)


@pytest.mark.parametrize("name,arg", ALL)
def test_config_builds_and_fills_known_cells(name, arg):
  c = load(name, arg)
  backbone, modality = paper.VARIANTS.get(arg.split(",")[-1], (None, None))
  if backbone:
    assert (c.model.backbone, c.model.modality) == (backbone, modality)
  assert c.input.use_audio == (c.model.modality == "video_audio")
  assert c.data.train.path == paper.FFPP_TRAIN and c.data.val.path == paper.FFPP_VAL
  # Validation never sees the test's held-out methods.
  assert c.data.val.keep_methods == c.data.train.keep_methods
  for record_set in c.data.test.values():
    assert record_set.path in paper.PREPARE_COMMANDS
    assert f"--out ROOT/{record_set.path}" in paper.PREPARE_COMMANDS[record_set.path]
  # Every cell, filled with any metric it asks for, lands in a listed column (and row).
  results = {name: _all_metrics() for name in c.data.test}
  cells = scoring.paper_cells(c, results)
  assert len(cells) == sum(len(rs.cells) for rs in c.data.test.values()) > 0
  for cell in cells:
    layout = tables.LAYOUTS[cell["table"]]
    assert cell["column"] in layout.columns, cell
    assert layout.numeric_rows or cell["row"] in layout.rows, cell


def _all_metrics():
  metrics = {"auc": 0.9, "ap": 0.8, "accuracy": 0.7, "scores": {"real_with_audio": {"mean": .3}}}
  metrics["per_category"] = {m: {"auc": 0.5} for m in splits.FFPP_METHODS}
  return metrics


def test_table2_leaves_one_method_out():
  c = load("table2_cross_manipulation.py", "NT")
  assert c.data.train.keep_methods == ("Deepfakes", "FaceSwap", "Face2Face")
  (name, test), = c.data.test.items()
  assert test.path == paper.FFPP_TEST and test.keep_methods == ("NeuralTextures",)
  assert test.cells == ("table2:FakeOut TSM-50x2 V&A:NT:auc",)
  same = load("table2_cross_manipulation.py", "held_out=NeuralTextures,variant=x2_va")
  assert same.to_dict() == c.to_dict()
  x1 = load("table2_cross_manipulation.py", "F2F,x1_v")
  assert "Face2Face" not in x1.data.train.keep_methods
  assert x1.data.test.Face2Face.cells == ("table2:FakeOut TSM-50 V:F2F:auc",)


def test_table3_trains_on_one_approach_and_tests_on_the_other():
  swap = load("table3_cross_approach.py", "swap_to_reenactment")
  assert swap.data.train.keep_methods == ("Deepfakes", "FaceSwap")
  assert swap.data.test.swap_to_reenactment.keep_methods == ("Face2Face", "NeuralTextures")
  back = load("table3_cross_approach.py", "reenactment_to_swap")
  assert back.data.train.keep_methods == ("Face2Face", "NeuralTextures")
  test = back.data.test.reenactment_to_swap
  assert test.keep_methods == ("Deepfakes", "FaceSwap")
  assert "table3:FakeOut TSM-50x2 V&A:Reenactment -> Swap (DF):per_category/Deepfakes/auc" \
      in test.cells


def test_table4_to_7_train_alike_and_test_their_sets():
  t4 = load("table4_cross_dataset.py", "x1_va")
  assert t4.data.train.keep_methods == splits.FFPP_METHODS
  assert sorted(rs.path for rs in t4.data.test.values()) == sorted(
      [paper.FACESHIFTER, paper.DEEPERFORENSICS, paper.DFDC, paper.DFDC_FILTERED])
  assert t4.data.test.faceshifter.cells == ("table4:FakeOut TSM-50 V&A:FSh:auc",)
  training = lambda c: (c.data.train.to_dict(), c.data.val.to_dict(), c.model.to_dict(),
                        c.train.to_dict(), c.init.to_dict())
  for name in ("table5_audio_visual.py", "table6_intra_ffpp.py", "table7_dfdc_no_dog_mask.py",
               "fig14_num_clips.py"):
    assert training(load(name, "x1_va")) == training(t4), name
  assert training(load("fig5_linear_probe.py", "finetune,x1_va")) == training(t4)
  t5 = load("table5_audio_visual.py")
  assert {rs.path for rs in t5.data.test.values()} == {paper.FAKEAVCELEB, paper.DEEPFAKETIMIT}
  t6 = load("table6_intra_ffpp.py")
  assert t6.data.test.ffpp.cells == ("table6:FakeOut TSM-50x2 V&A:ACC:accuracy",
                                     "table6:FakeOut TSM-50x2 V&A:AUC:auc")
  assert t6.data.test.ffpp.keep_methods == ()
  t7 = load("table7_dfdc_no_dog_mask.py")
  for record_set in t7.data.test.values():
    assert record_set.drop_categories == ("dog_mask",)
  assert {rs.path for rs in t7.data.test.values()} == {paper.DFDC, paper.DFDC_FILTERED}


def test_figure_configs():
  probe = load("fig5_linear_probe.py", "linear_probe")
  assert probe.train.linear_probe
  assert not load("fig5_linear_probe.py", "finetune").train.linear_probe
  assert probe.data.test.ffpp.cells == ("fig5:Linear probing TSM-50x2 V&A:FF++:auc",)
  inits = {b: load("fig6_backbones.py", b)
           for b in ("mmv", "imagenet", "kinetics", "scratch", "self_pretrained")}
  assert {b: (c.init.mode, c.init.partial) for b, c in inits.items()} == {
      "mmv": ("mmv", False), "imagenet": ("flax", True), "kinetics": ("flax", True),
      "scratch": ("scratch", False), "self_pretrained": ("pretrained", False)}
  assert all((c.model.backbone, c.model.modality) == ("tsm_resnet_x1", "video")
             for c in inits.values())
  fig14 = load("fig14_num_clips.py")
  assert all("N={num_clips}" in rs.cells[0] for rs in fig14.data.test.values())
  fig13 = load("fig13_audio_shift.py")
  assert fig13.input.eval_audio_alignment == "aligned" and fig13.model.modality == "video_audio"
  with pytest.raises(ValueError, match="x1_v"):
    load("fig13_audio_shift.py", "x1_v")


@pytest.mark.parametrize("name,arg,message", [
    ("table2_cross_manipulation.py", None, "missing held_out"),
    ("table2_cross_manipulation.py", "DeepFakeDetection", "not a value of any option"),
    ("table2_cross_manipulation.py", "NT,FS", "held_out given twice"),
    ("table4_cross_dataset.py", "variant=x3", "not one of x1_v, x1_va, x2_v, x2_va"),
    ("fig6_backbones.py", "size=big", "unknown option 'size'"),
])
def test_bad_arguments_say_what_is_expected(name, arg, message):
  with pytest.raises(ValueError, match=message):
    load(name, arg)


def test_command_line_loading_and_data_checks(tmp_path):
  """The finetune/evaluate command-line path: config_flags with ':ARG' and an override, then
  finetune's pre-compile check of every record set and the checkpoint."""
  argv = ["prog", f"--config={CONFIG_DIR / 'table2_cross_manipulation.py'}:FS,x1_va",
          f"--config.data.root={tmp_path}", "--config.init.checkpoint=mmv.pkl"]
  values = flags.FlagValues()
  # The override flags (--config.x.y) are declared from the argv seen at definition time.
  config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True,
                                  sys_argv=argv)
  values(argv)
  c = values.config
  assert c.data.root == str(tmp_path) and c.data.test.FaceSwap.keep_methods == ("FaceSwap",)
  for record_set in ("ffpp/train", "ffpp/val"):
    (tmp_path / record_set).mkdir(parents=True)
    (tmp_path / record_set / "train-00000-of-00001.tfrecord").touch()
  with pytest.raises(state.ConfigError, match="no TFRecord shards at .*ffpp/test"):
    finetune.check_config(c)
  (tmp_path / "ffpp/test").mkdir()
  (tmp_path / "ffpp/test/test-00000-of-00001.tfrecord").touch()
  with pytest.raises(state.ConfigError, match="mmv.pkl does not exist"):
    finetune.check_config(c)
  (tmp_path / "mmv.pkl").touch()
  with c.unlocked():
    c.init.checkpoint = str(tmp_path / "mmv.pkl")
  assert set(finetune.check_config(c)) == {"train", "val", "test/FaceSwap"}


def test_documented_prepare_commands_parse_and_apply_the_audio_plans():
  from data import prepare
  for path, command in paper.PREPARE_COMMANDS.items():
    args, _ = prepare.parse_args(command.split()[3:])
    assert str(args.out) == f"ROOT/{path}"
    plan = paper.ENRICHMENT_COMMANDS.get(path)
    if plan:  # the silent FF++-based sets: the plan written first is the one applied
      assert plan.split("--out ")[1].split()[0] == args.audio_plan
    else:
      assert args.audio_plan is None
