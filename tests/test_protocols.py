"""Aggregation, metrics (against sklearn on known scores), tables and plots."""
import numpy as np
import pytest
from sklearn import metrics as skmetrics

from data import protocols


def _row(video, track, label, score, category="real", dataset="d"):
  return {"video_id": video, "track": track, "dataset": dataset, "split": "test",
          "category": category, "method": "", "label": label, "score": score}


def test_video_score_is_the_max_over_tracks():
  rows = [_row("a", 0, 1, 0.2), _row("a", 1, 1, 0.9), _row("b", 0, 0, 0.3)]
  videos = {r["video_id"]: r for r in protocols.video_scores(rows)}
  assert videos["a"]["score"] == 0.9 and videos["a"]["track"] == 1
  assert videos["a"]["num_tracks"] == 2 and videos["b"]["score"] == 0.3
  mixed = [_row("a", 0, 1, 0.2), _row("a", 1, 0, 0.9)]
  with pytest.raises(protocols.EvaluationError, match="different labels"):
    protocols.video_scores(mixed)


def test_metrics_equal_sklearn_on_known_scores():
  labels = [0, 0, 1, 1, 0, 1]
  scores = [0.1, 0.6, 0.4, 0.8, 0.3, 0.9]
  m = protocols.binary_metrics(labels, scores)
  assert m.auc == pytest.approx(skmetrics.roc_auc_score(labels, scores)) == pytest.approx(8 / 9)
  assert m.ap == pytest.approx(skmetrics.average_precision_score(labels, scores))
  assert m.accuracy == pytest.approx(4 / 6)
  assert (m.num_real, m.num_fake) == (3, 3)


@pytest.mark.parametrize("labels,scores,message", [
    ([], [], "empty"), ([1, 1], [0.2, 0.3], "both classes"),
    ([0, 1], [0.2, float("nan")], "NaN")])
def test_meaningless_evaluations_raise(labels, scores, message):
  with pytest.raises(protocols.EvaluationError, match=message):
    protocols.binary_metrics(labels, scores)


def test_per_category_uses_all_reals():
  rows = [_row("r1", 0, 0, 0.1), _row("r2", 0, 0, 0.5), _row("f1", 0, 1, 0.9, "RVFA"),
          _row("f2", 0, 1, 0.3, "FVRA-WL")]
  out = protocols.per_category_metrics(rows, ["RVFA", "FVRA-WL", "FVFA-GAN"])
  assert out["RVFA"].auc == 1.0 and out["FVRA-WL"].auc == 0.5 and "FVFA-GAN" not in out


def test_bootstrap_auc_is_seeded():
  rng = np.random.default_rng(0)
  rows = [_row(f"r{i}", 0, 0, s) for i, s in enumerate(rng.normal(0, 1, 50))]
  rows += [_row(f"f{i}", 0, 1, s) for i, s in enumerate(rng.normal(1, 1, 80))]
  first = protocols.bootstrap_auc(rows, 20, 40, draws=50, seed=3)
  assert first == protocols.bootstrap_auc(rows, 20, 40, draws=50, seed=3)
  assert 0.6 < first[0] < 0.9 and 0 < first[1] < 0.1
  with pytest.raises(protocols.EvaluationError, match="need 60 real"):
    protocols.bootstrap_auc(rows, 60, 40, draws=1)


def test_table_rendering_and_scores_csv(tmp_path):
  table = protocols.Table("Table 2: AUC", ["DF", "FS"], {"FakeOut": {"DF": 0.97, "FS": None}},
                          note="trained on the other three methods")
  md = table.markdown()
  assert "| FakeOut | 97.0 | - |" in md and md.startswith("**Table 2: AUC**")
  assert table.csv().splitlines() == ["row,DF,FS", "FakeOut,0.97,"]
  paths = table.save(tmp_path, "t2")
  assert [p.name for p in paths] == ["t2.md", "t2.csv"]
  rows = [dict(_row("a", 0, 1, 0.75), intra=0.1), _row("b", 0, 0, 0.25)]
  protocols.write_scores(tmp_path / "s.csv", rows)
  back = protocols.read_scores(tmp_path / "s.csv")
  assert back[0]["score"] == 0.75 and back[0]["intra"] == "0.1" and back[1]["label"] == 0
  png = protocols.plot_roc_and_histograms(back, tmp_path / "roc.png", groups="category")
  assert png.stat().st_size > 5000
