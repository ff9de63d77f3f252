"""Evaluation of the inconsistency detector: video aggregation, the paper's tables on scores of
known structure, and the whole command on a small record set."""
import csv
import json

import pytest

from data import constants, protocols
from inconsistency_jax import evaluate
from tests import inconsistency_records as fixtures


def _row(video, category, label, intra, cross, track=0, status="ok", motion=1.0):
  total = intra + (cross if cross != "" else 0.0)
  return {"video_id": video, "track": track, "dataset": "d", "split": "test",
          "category": category, "method": "", "label": label, "status": status,
          "intra": intra, "cross": cross, "total": total, "score": -total, "motion": motion,
          "has_audio": cross != ""}


def _scores():
  """Intra separates the drift fakes (FVRA-GAN) perfectly, Cross the RVFA fakes."""
  rows = []
  for i in range(6):
    rows.append(_row(f"real{i}", "real", 0, 0.8 + 0.01 * i, 0.5 + 0.01 * i, motion=i))
    rows.append(_row(f"rvfa{i}", "RVFA", 1, 0.8 + 0.01 * i, 0.1 + 0.01 * i, motion=i))
    rows.append(_row(f"drift{i}", "FVRA-GAN", 1, 0.3 + 0.01 * i, 0.5 + 0.01 * i, motion=i))
  return rows


def test_a_video_is_its_least_consistent_scored_track():
  rows = [_row("v", "real", 0, 0.9, 0.5, track=0), _row("v", "real", 0, 0.2, 0.6, track=1),
          _row("v", "real", 0, 0.0, 0.0, track=2, status="too_short"),
          _row("w", "real", 0, 0.7, "", track=0)]
  by_total = {r["video_id"]: r for r in evaluate.video_rows(rows, "total")}
  assert by_total["v"]["track"] == 1 and by_total["v"]["score"] == pytest.approx(-0.8)
  assert by_total["v"]["num_tracks"] == 2  # the too-short track is not scored
  by_cross = {r["video_id"]: r for r in evaluate.video_rows(rows, "cross")}
  assert set(by_cross) == {"v"} and by_cross["v"]["track"] == 0  # w has no audio


def test_table2_rows_and_avg_fv_follow_the_sub_scores():
  table, numbers = evaluate.category_table(_scores(), ("RVFA", "FVRA-WL", "FVRA-GAN"),
                                           ("FVRA-WL", "FVRA-GAN"), "t")
  assert numbers["Intra"]["FVRA-GAN AUC"] == 1.0 and numbers["Intra"]["RVFA AUC"] == 0.5
  assert numbers["Cross"]["RVFA AUC"] == 1.0 and numbers["Cross"]["FVRA-GAN AUC"] == 0.5
  assert numbers["Intra+Cross"]["RVFA AUC"] == 1.0
  assert numbers["Intra"]["AVG-FV AUC"] == 1.0  # only FVRA-GAN is present among the FV ones
  assert "FVRA-WL AUC" not in numbers["Intra"]
  text = table.markdown()
  assert "| Intra | 50.0 |" in text and "AVG-FV AUC" in text and "| - |" in text


def test_compression_kodf_and_motion_tables():
  rows = _scores()
  worse = [{**r, "cross": 0.5, "total": r["intra"] + 0.5} for r in rows]
  _, table3 = evaluate.compression_table({"RAW": rows, "LQ": worse}, ("RVFA",))
  assert table3["Cross"]["RAW AUC"] == 1.0 and table3["Cross"]["LQ AUC"] == 0.5
  table, kodf = evaluate.kodf_table(rows, draws=50, seed=0, num_real=4, num_fake=8)
  assert 0 < kodf["Intra"]["auc_std"] < 0.2 and kodf["Intra+Cross"]["auc_mean"] == 1.0
  assert "±" in table.markdown()
  again = evaluate.kodf_table(rows, draws=50, seed=0, num_real=4, num_fake=8)[1]
  assert again == kodf  # fixed seed
  _, too_many = evaluate.kodf_table(rows, draws=5, seed=0, num_real=7, num_fake=8)
  assert too_many == {}
  curve = evaluate.motion_curve(rows, bins=2)
  assert curve["videos"] == [9, 9] and curve["bin_median"][0] < curve["bin_median"][1]
  assert set(curve["auc"]) == {"Intra", "Cross", "Intra+Cross"}
  with pytest.raises(protocols.EvaluationError, match="too few"):
    evaluate.motion_curve(rows[:5], bins=4)


def _test_set(directory):
  tracks = [(fixtures.track_arrays(10 + i, 70, seed=50 + i),
             fixtures.meta(f"real{i}", f"id{10 + i}", category="real", split="test"))
            for i in range(3)]
  desync = fixtures.envelope(70, seed=999)
  tracks.append((fixtures.track_arrays(10, 70, seed=50, sound=desync),
                 fixtures.meta("rvfa0", "id10", label=1, category="RVFA", split="test")))
  drift = [11] * 35 + [12] * 35
  tracks.append((fixtures.track_arrays(11, 70, seed=51, face_identity=drift),
                 fixtures.meta("drift0", "id11", label=1, category="FVRA-GAN", split="test")))
  tracks.append((fixtures.track_arrays(12, 70, seed=52, audio=False),
                 fixtures.meta("silent0", "id12", label=1, category="FVRA-WL", split="test")))
  tracks.append((fixtures.track_arrays(13, 20, seed=53),
                 fixtures.meta("short0", "id13", category="real", split="test")))
  return fixtures.write_shards(directory, tracks, 1, prefix="test")


def test_evaluate_writes_scores_tables_and_figures(tmp_path):
  root = tmp_path / "records"
  _test_set(root / "test")
  config = fixtures.smoke_config(root)
  config.data.test = {"synthetic": "test", "synthetic_hq": "test"}
  config.eval.compression_sets = {"HQ": "synthetic_hq"}
  config.eval.kodf_set = "synthetic"
  config.eval.kodf_draws = 20
  config.eval.kodf_real = 2
  config.eval.kodf_fake = 2
  config.eval.motion_bins = 2
  workdir = fixtures.untrained_workdir(tmp_path / "run", config)
  summary = evaluate.evaluate(config, str(workdir))

  out = workdir / "eval"
  with open(out / "synthetic" / "scores.csv") as f:
    rows = {r["video_id"]: r for r in csv.DictReader(f)}
  assert len(rows) == 7
  assert rows["short0"]["status"] == "too_short" and rows["short0"]["intra"] == ""
  assert rows["silent0"]["has_audio"] == "False" and rows["silent0"]["cross"] == ""
  real = rows["real0"]
  assert real["num_windows"] == "5"  # 70 frames hold 5 windows of 14 (6 asked)
  assert float(real["score"]) == pytest.approx(-float(real["total"]))
  assert float(real["total"]) == pytest.approx(float(real["intra"]) + float(real["cross"]))
  assert summary["sets"]["synthetic"] == {"tracks": 7, "too_short": 1, "no_audio": 1}
  for name in ("table2.md", "table2.csv", "table3.md", "kodf.md", "fig4_motion.png",
               "fig4_motion.csv", "summary.json", "synthetic/video_scores.csv",
               "synthetic/roc.png"):
    assert (out / name).is_file(), name
  assert set(summary["table2"]) == {"Intra", "Cross", "Intra+Cross"}
  assert summary["table2"]["Intra"]["counts"]["RVFA"] == [3, 1]
  assert "FVRA-WL AUC" not in summary["table2"]["Cross"]  # its only fake has no audio
  table3 = summary["table3"]["Intra+Cross"]
  assert table3["RAW AUC"] == table3["HQ AUC"]  # the same records under two names
  assert set(summary["kodf"]) == {"Intra", "Cross", "Intra+Cross"}
  assert json.loads((out / "summary.json").read_text())["checkpoint"] == "latest"
  assert constants.REAL == 0


def test_ground_truth_groups_split_a_category(tmp_path):
  truth = tmp_path / "truth.csv"
  lines = ["path,kind"] + [f"real{i}.mp4,real" for i in range(6)]
  lines += [f"drift{i}.mp4,{'drift' if i < 3 else 'swap'}" for i in range(6)]
  truth.write_text("\n".join(lines) + "\n")
  groups = evaluate.read_groups(str(truth), "kind")
  assert groups["drift0"] == "drift" and groups["drift5"] == "swap"
  rows = [r for r in _scores() if r["category"] != "RVFA"]
  _, numbers = evaluate.group_table(rows, groups, "kind", "t")
  assert set(numbers["Intra"]) == {"drift", "swap"}
  assert numbers["Intra"]["drift"]["auc"] == 1.0 and numbers["Intra"]["drift"]["fake"] == 3
  with pytest.raises(ValueError, match="'colour' column"):
    evaluate.read_groups(str(truth), "colour")
