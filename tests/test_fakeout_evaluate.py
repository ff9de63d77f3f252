"""fakeout_jax.evaluate / studies: the Fig. 14 / Fig. 13 sweeps, Fig. 12's UMAP,
paper cells, dropped categories, failed test sets. One tiny random model, compiled once."""
import csv
import json
import sys
import types

import jax
import numpy as np
import pytest

from data import constants, protocols, records
from fakeout_jax import checkpoints, evaluate, models, scoring, state, studies
from fakeout_jax.configs import default, paper
from fakeout_jax.configs import model as model_config
from tests import fakeout_legacy_pickles as legacy
from tests import fakeout_tiny
from tests import mmv_haiku_reference as reference
from tests import test_fakeout_parity as parity


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  """Tiny test records, a freshly initialised tiny FakeOut saved as `convert` writes it, and a
  Scorer holding it (its step compiles once per clip count for the whole module)."""
  root = tmp_path_factory.mktemp("records")
  _write_records(root / "test")
  config = fakeout_tiny.config(root)
  config.data.test = {"tiny": _record_set("test", cells=(
      "fig14:N={num_clips}:tiny:auc", "fig13:{audio_shift:+.2f} s:tiny real:scores/real/mean"))}
  variables = _unit_statistics(state.fresh_variables(
      config, models.create_model(config.model), jax.random.PRNGKey(1)))
  path = tmp_path_factory.mktemp("ckpt") / "converted"
  checkpoints.save_variables(path, jax.device_get(variables))
  return config, scoring.Scorer(config, str(path)), path


def _unit_statistics(variables):
  """A fresh init's moving averages have seen no batch (counter 0): in inference mode the
  network saturates. Moving mean 0 and variance 1, as after many batches of whitened data."""
  def fill(path, value):
    names = [getattr(p, "key", "") for p in path]
    if names[-1] == "counter":
      return np.full_like(value, 10**6)
    return np.ones_like(value) if "var_ema" in names else np.zeros_like(value)
  stats = jax.tree_util.tree_map_with_path(fill, jax.device_get(variables["batch_stats"]))
  return {**variables, "batch_stats": stats}


def _write_records(directory, num_real=3, num_fake=3, frames=20, seed=2):
  """Like tests/fakeout_tiny.py's records, with audio that changes over time (noise under a
  moving envelope), so that shifting it changes what the model hears."""
  rng = np.random.default_rng(seed)
  directory.mkdir(parents=True)
  samples = int(frames / constants.FPS * constants.SAMPLE_RATE)
  with records.ShardWriter(directory / records.shard_name("test", 0, 1)) as writer:
    for i, label in enumerate([0] * num_real + [1] * num_fake):
      video = rng.integers(80, 120, (frames, 224, 224, 3), dtype=np.uint8)
      if label:
        video[:, 60:160, 60:160] = 220
      envelope = np.abs(np.sin(np.linspace(0, 3 * np.pi, samples) + i))
      audio = (rng.uniform(-0.9, 0.9, samples) * envelope).astype(np.float32)
      writer.write(records.serialize_track(
          records.TrackArrays(frames_224=video, timestamps=np.arange(frames) / constants.FPS,
                              detected=np.ones(frames, bool), fps=constants.FPS, audio=audio),
          records.TrackMetadata(video_id=f"v{i:02d}", dataset="tiny", label=label,
                                category="fake" if label else "real",
                                method="square" if label else "")))


def _record_set(path, **kwargs):
  return paper.test_set(path, **kwargs)


def _score_rows(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def test_num_clips_sweep_evaluates_once_per_n(setup, tmp_path):
  config, scorer, _ = setup
  files = scoring.test_files(config)
  summary = studies.num_clips_sweep(scorer, config, files, tmp_path, [1, 3])
  saved = json.loads((tmp_path / "sweep_num_clips.json").read_text())
  assert saved["values"] == [1.0, 3.0] and not saved["failed"]
  for n in (1, 3):
    metrics = summary["results"][f"N={n}"]["tiny"]
    assert metrics["num_real"] == 3 and metrics["num_fake"] == 3 and 0 <= metrics["auc"] <= 1
    rows = _score_rows(tmp_path / "sweep_num_clips" / f"N={n}" / "scores_tiny.csv")
    assert len(rows) == 6
    for row in rows:  # every track scored with N clips, its score their mean
      clips = [float(s) for s in row["clip_scores"].split()]
      assert len(clips) == n and float(row["score"]) == pytest.approx(np.mean(clips), abs=1e-5)
  cells = {(c["table"], c["row"], c["column"]): c["value"] for c in saved["paper_cells"]}
  assert cells[("fig14", "N=3", "tiny")] == summary["results"]["N=3"]["tiny"]["auc"]
  assert ("fig14", "N=1", "tiny") in cells
  assert (tmp_path / "fig14_auc_vs_num_clips.png").stat().st_size > 0


def test_audio_shift_sweep_changes_what_the_model_hears(setup, tmp_path):
  config, scorer, _ = setup
  config = config.copy_and_resolve_references()
  # Real videos only: no AUC, but the score summary the figure plots.
  config.data.test.reals = _record_set("test", keep_methods=("no such method",), cells=(
      "fig13:{audio_shift:+.2f} s:reals:scores/real_with_audio/mean",
      "fig13:{audio_shift:+.2f} s:reals:auc"))
  files = scoring.test_files(config)
  summary = studies.audio_shift_sweep(scorer, config, files, tmp_path, [0.0, -0.3])
  reals = summary["results"]["-0.30s"]["reals"]
  assert "auc" not in reals and reals["scores"]["real_with_audio"]["count"] == 3
  assert "auc" in summary["results"]["-0.30s"]["tiny"]
  before = _score_rows(tmp_path / "sweep_audio_shift" / "+0.00s" / "scores_tiny.csv")
  after = _score_rows(tmp_path / "sweep_audio_shift" / "-0.30s" / "scores_tiny.csv")
  assert [r["video_id"] for r in before] == [r["video_id"] for r in after]
  assert any(r["clip_scores"] != s["clip_scores"] for r, s in zip(before, after))
  cells = {(c["table"], c["row"], c["column"]) for c in summary["paper_cells"]}
  assert {("fig13", "+0.00 s", "reals"), ("fig13", "-0.30 s", "tiny real")} <= cells
  assert not any(c[2] == "reals" and c[0] == "fig13" and "auc" in c for c in cells)
  assert (tmp_path / "fig13_score_vs_audio_shift.png").stat().st_size > 0


def test_audio_shifts_need_an_audio_model(setup, tmp_path):
  config, _, path = setup
  config = config.copy_and_resolve_references()
  config.model.modality = "video"
  with pytest.raises(state.ConfigError, match="needs a video-and-audio model"):
    evaluate.run(config, str(path), str(tmp_path), audio_shifts=[0.5])


def test_umap_is_skipped_with_a_message_without_umap_learn(setup, tmp_path, caplog, monkeypatch):
  config, scorer, _ = setup
  monkeypatch.setitem(sys.modules, "umap", None)  # import umap -> ImportError, installed or not
  assert studies.umap_figure(scorer, config, scoring.test_files(config), tmp_path) is None
  assert ("Fig. 12 (UMAP of clip embeddings) skipped: umap-learn is not installed" in caplog.text
          and "pip install umap-learn" in caplog.text)
  assert not (tmp_path / "fig12_umap.png").exists()


def test_umap_figure_with_umap_learn(setup, tmp_path, monkeypatch):
  """umap-learn is not installed here: a stand-in with its interface (a PCA) runs our side."""
  config, scorer, _ = setup

  class UMAP:
    def __init__(self, n_components, random_state):
      self.n_components = n_components

    def fit_transform(self, x):
      centred = x - x.mean(0)
      return centred @ np.linalg.svd(centred, full_matrices=False)[2][:self.n_components].T

  monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=UMAP))
  path = studies.umap_figure(scorer, config, scoring.test_files(config), tmp_path)
  assert path.stat().st_size > 0
  saved = np.load(tmp_path / "clip_embeddings.npz")
  # 6 tracks x N clips; the classifier's input: vid_repr (256) + aud_repr (256) at this width.
  clips = 6 * config.input.eval_num_clips
  assert saved["embeddings"].shape == (clips, 512) and len(saved["groups"]) == clips
  assert set(saved["groups"]) == {"tiny/real", "tiny/fake"}


def test_a_failed_test_set_is_recorded_and_the_others_evaluated(setup, tmp_path):
  config, scorer, path = setup
  config = config.copy_and_resolve_references()
  config.data.test.dogs = _record_set("test", drop_categories=("dog_mask",))
  with pytest.raises(protocols.EvaluationError, match="1 test set.*dog_mask_list"):
    evaluate.evaluate(config, str(path), str(tmp_path), scorer=scorer)
  saved = json.loads((tmp_path / "metrics.json").read_text())
  assert "dogs" in saved["failed"] and saved["results"]["tiny"]["num_fake"] == 3
  rows = {c["row"] for c in saved["paper_cells"]}
  assert rows == {f"N={config.input.eval_num_clips}", "+0.00 s"}
  assert (tmp_path / "results.md").is_file() and (tmp_path / "scores_tiny.csv").is_file()


def test_drop_categories_and_paper_cells():
  rows = [{"category": c, "label": 0} for c in ("real", "dog_mask", "real")]
  record_set = _record_set("dfdc/test", drop_categories=("dog_mask",))
  assert len(scoring.drop_categories(rows, record_set, "dfdc")) == 2
  with pytest.raises(protocols.EvaluationError, match="matched no video of dfdc/test"):
    scoring.drop_categories(rows[:1], record_set, "dfdc")
  assert scoring.drop_categories(rows, _record_set("x"), "x") == rows

  from tests import fakeout_tiny_config
  config = fakeout_tiny_config.get_config()
  config.input.eval_num_clips = 7
  config.data.test = {"fav": _record_set("fav", cells=(
      "table5:FakeOut:FakeAVCeleb:auc", "t:N={num_clips}:RVFA:per_category/RVFA/auc",
      "t:r:missing:per_category/FVFA-GAN/auc", "fig13:{audio_shift:+.1f}:x:scores/real/mean"))}
  results = {"fav": {"auc": 0.75, "per_category": {"RVFA": {"auc": 0.5}},
                     "scores": {"real": {"mean": 0.25}}}}
  assert scoring.paper_cells(config, results) == [
      {"table": "table5", "row": "FakeOut", "column": "FakeAVCeleb", "value": 0.75},
      {"table": "t", "row": "N=7", "column": "RVFA", "value": 0.5},
      {"table": "fig13", "row": "+0.0", "column": "x", "value": 0.25}]


def _released_checkpoint_parity(tmp_path, width_mult: int):
  """An original-format FakeOut pickle (random weights, the 2021-22 FlatMapping and
  reconstruct_device_array forms) read by state.load_variables gives the Haiku oracle's
  logits on the same clips."""
  original = reference.random_checkpoint(width_mult=width_mult, seed=11)
  path = tmp_path / "fakeout_released.pkl"
  path.write_bytes(legacy.dumps(original, "flat_dict", "reconstruct", protocol=4))
  config = default.get_config()  # the released model: TSM-50x2, V&A, affine head
  config.model = model_config.get_config(f"tsm_resnet_x{width_mult}")
  config.input.num_frames, config.input.image_size = 4, 32
  variables = state.load_variables(config, str(path))
  rng = np.random.default_rng(12)
  video = rng.uniform(0, 1, (2, 4, 32, 32, 3)).astype(np.float32)
  audio = (rng.standard_normal((2, 40, 80, 1)) * 10 - 40).astype(np.float32)
  words = np.zeros((2, 16), np.int32)  # the oracle always builds MMV's text branch
  haiku = reference.transformed(width_mult=width_mult, axis_name=None)
  expected, _ = jax.jit(lambda p, s: haiku.apply(p, s, None, video, audio, words, False))(
      original["params"], original["state"])
  model = models.create_model(config.model)
  actual = jax.jit(lambda v: model.apply(v, video, audio, train=False))(variables)
  for name in ("vid_repr", "aud_repr", "logits"):
    parity.assert_close(actual[name], expected[name], f"x{width_mult} {name}")
  assert float(np.std(expected["logits"])) > 1e-3  # not a comparison of constants


def test_released_checkpoint_format_through_load_variables(tmp_path):
  """FakeOut's released TSM-50x2 (V&A) layout at full width (about 2 GB of memory, ~40 s,
  mostly compiling the two ResNet-50x2 graphs; small clips keep the forward cheap)."""
  _released_checkpoint_parity(tmp_path, 2)
