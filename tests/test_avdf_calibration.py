"""avdf calibration, fusion and evaluation on scores with a known answer (no models, fast)."""
import json
import math

import numpy as np
import pytest

from avdf import calibration, evaluation, fusion


def _logistic_rows(n=4000, seed=0):
  """Faces whose fake probability is sigmoid(2 f - i + 0.5): f, i, a = the three features."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 3))
  truth = 1 / (1 + np.exp(-(2 * x[:, 0] - x[:, 1] + 0.5)))
  labels = (rng.uniform(size=n) < truth).astype(int)
  rows = [{"label": int(y), "features": dict(zip(calibration.FEATURES, map(float, v)))}
          for y, v in zip(labels, x)]
  return rows, x, truth


def test_ece_by_hand():
  # one bin: mean probability 0.9, half of the faces fake -> |0.5 - 0.9|
  assert calibration.reliability([0, 0, 1, 1], [0.9] * 4)["ece"] == pytest.approx(0.4)
  # two bins of two: (0.1, 0.2) with no fake, (0.8, 1.0) with both fake
  r = calibration.reliability([0, 0, 1, 1], [0.1, 0.2, 0.8, 1.0], bins=2)
  assert r["ece"] == pytest.approx(0.5 * 0.15 + 0.5 * 0.1)
  assert [b["count"] for b in r["bins"]] == [2, 2]


def test_logistic_recovers_a_known_calibration():
  rows, x, truth = _logistic_rows()
  fitted = calibration.fit(rows, method="logistic", selection="all")
  full = fitted.fits["fakeout+identity+audio_video"]
  assert np.mean(np.abs(full.probability(x) - truth)) < 0.02
  # the weights, back in feature units, are the generating ones (the third is noise)
  weights = np.array(full.coef) / np.array(full.scale)
  assert weights == pytest.approx([2.0, -1.0, 0.0], abs=0.15)
  assert full.reliability["ece"] < 0.03 and full.count == len(rows)


def test_isotonic_is_monotone_in_the_logistic_log_odds_and_round_trips(tmp_path):
  rows, x, truth = _logistic_rows(seed=1)
  fitted = calibration.fit(rows, method="isotonic", threshold=0.7, selection="all")
  full = fitted.fits["fakeout+identity+audio_video"]
  order = np.argsort(full.log_odds(x))
  assert np.all(np.diff(full.probability(x)[order]) >= -1e-12)
  assert np.mean(np.abs(full.probability(x) - truth)) < 0.04
  loaded = calibration.Calibration.load(fitted.save(tmp_path / "c.json"))
  assert loaded.threshold == 0.7 and loaded.method == "isotonic"
  face = {"fakeout": 0.3, "identity": -0.2, "audio_video": 1.0}
  assert loaded.probability(face) == fitted.probability(face)
  saved = json.loads((tmp_path / "c.json").read_text())
  assert len(saved["rows"]) == len(rows) and "reliability" in saved["fits"]["fakeout"]


def test_each_face_uses_the_fit_of_exactly_its_features():
  rows, _, _ = _logistic_rows(n=600)
  # the silent faces: no audio_video score; only two of them are real -> that subset is skipped
  for r in rows[:40]:
    del r["features"]["audio_video"]
  rows = [r for r in rows if "audio_video" in r["features"] or r["label"] == 1][:] + \
      [r for r in rows[:40] if r["label"] == 0][:2]
  fitted = calibration.fit(rows, selection="all")
  p, used = fitted.probability({"fakeout": 1.0, "identity": 0.0})
  assert used == "fakeout+identity" and 0 < p < 1
  # the fakeout+identity fit is on every face (silent or not); the full fit on the others
  assert fitted.fits["fakeout+identity"].count == len(rows)
  assert fitted.fits["fakeout+identity+audio_video"].count == len(rows) - sum(
      "audio_video" not in r["features"] for r in rows)
  p, used = fitted.probability({"fakeout": 1.0, "identity": 0.0, "audio_video": 0.2})
  assert used == "fakeout+identity+audio_video"
  assert fitted.probability({})[0] is None


def test_a_subset_without_both_classes_is_not_fitted_and_says_why():
  rows = [{"label": i % 2, "features": {"fakeout": float(i), "identity": float(-i)}}
          for i in range(20)]
  rows += [{"label": 1, "features": {"identity": 0.0}}] * 5
  fitted = calibration.fit(rows)
  assert "identity" in fitted.fits and "fakeout+identity" in fitted.fits
  p, reason = fitted.probability({"audio_video": 1.0})
  assert p is None and "0 real and 0 fake" in reason
  with pytest.raises(calibration.CalibrationError, match="no feature subset"):
    calibration.fit([{"label": 1, "features": {"fakeout": 0.1}}])


def test_cross_validation_keeps_the_informative_scores_and_drops_noise():
  rows, x, truth = _logistic_rows()  # fake probability from fakeout and identity; audio noise
  fitted = calibration.fit(rows)
  full = fitted.fits["fakeout+identity+audio_video"]
  assert full.features == ("fakeout", "identity")
  assert np.mean(np.abs(full.probability(x[:, :2]) - truth)) < 0.02
  # every candidate was scored and the winner has the lowest held-out log loss
  losses = {"+".join(c["inputs"]): c["cv_log_loss"] for c in full.selection}
  assert len(losses) == 9 and "inconsistency" in losses and "identity+inconsistency" not in losses
  assert losses["fakeout+identity"] == min(losses.values())


def test_a_detector_at_chance_on_a_small_validation_set_gets_no_weight():
  """The demo's case: 6 real and 12 fake validation faces, FakeOut at chance (a constant with
  jitter), the lip-sync score informative: a free weight for FakeOut fitted on 18 faces ranks
  held-out faces worse than the lip-sync score alone; the selected fit uses only the latter."""
  def faces(seed, n_real, n_fake):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_real), np.ones(n_fake)].astype(int)
    return [{"label": int(y), "features": {
        "fakeout": float(rng.normal(0, 0.01)), "identity": float(rng.normal()),
        "audio_video": float(rng.normal() + 1.5 * y)}} for y in labels]
  for seed in range(5):
    fitted = calibration.fit(faces(seed, 6, 12))
    assert fitted.source["selection"] == "cross_validated"
    full = fitted.fits["fakeout+identity+audio_video"]
    # the inconsistency detector's own score (or its lip-sync branch alone), never FakeOut
    assert full.features in (("inconsistency",), ("audio_video",)), seed
    p, used = fitted.probability({"fakeout": 5.0, "identity": 0.0, "audio_video": 0.0})
    assert used == "fakeout+identity+audio_video"
    assert p == fitted.probability({"fakeout": -5.0, "identity": 0.0, "audio_video": 0.0})[0]
  # without the selection FakeOut's noise gets a weight
  assert calibration.fit(faces(0, 6, 12), selection="all").fits[
      "fakeout+identity+audio_video"].coef[0] != 0.0


def _two_branch_faces(seed, n_real, n_fake):
  """The demo's case for the inconsistency detector: each branch sees its own half of the fakes
  (identity drift vs lip-sync), with equal strength, so its own equal-weight sum is right."""
  rng = np.random.default_rng(seed)
  rows = [{"label": 0, "features": {"identity": float(rng.normal()),
                                    "audio_video": float(rng.normal())}} for _ in range(n_real)]
  rows += [{"label": 1, "features": {"identity": float(rng.normal() + 1.5 * (i % 2 == 0)),
                                     "audio_video": float(rng.normal() + 1.5 * (i % 2 == 1))}}
           for i in range(n_fake)]
  return rows


def test_one_standard_error_rule_keeps_the_detectors_own_score_on_a_small_set():
  """On 6 real and 12 fake faces the lowest cross-validated loss goes, seed after seed, to one
  branch alone or to two free weights: noise that ranks new faces worse. Within one standard
  error the rule keeps the detector's own sum (unless the sum is no better than the base rate
  and a branch is); the plain 'lowest' rule does not."""
  lowest_choices = set()
  kept = 0
  for seed in range(10):
    rows = _two_branch_faces(seed, 6, 12)
    fit = calibration.fit(rows).fits["identity+audio_video"]
    own, = [c for c in fit.selection if c["inputs"] == ["inconsistency"]]
    chosen = [c for c in fit.selection if c["chosen"]]
    assert len(chosen) == 1
    if fit.features != ("inconsistency",):
      assert not own["beats_base_rate"] and chosen[0]["beats_base_rate"], seed
    kept += fit.features == ("inconsistency",)
    best = fit.selection[0]
    assert chosen[0]["cv_log_loss"] <= best["cv_log_loss"] + best["cv_log_loss_se"]
    assert all(c["cv_log_loss_se"] > 0 for c in fit.selection)
    lowest_choices.add(calibration.fit(rows, selection="lowest").fits[
        "identity+audio_video"].features)
  assert kept >= 9
  assert lowest_choices - {("inconsistency",)}  # the lowest loss alone is noise here


def test_one_standard_error_rule_never_takes_an_input_no_better_than_the_base_rate():
  """The demo's case: FakeOut at chance, the inconsistency branches weakly informative, 6 real
  and 12 fake faces. FakeOut's loss, above the base rate's, often lies within one standard
  error of the best; as one detector's own score it was chosen over a branch that informs."""
  exercised = 0
  for seed in range(12):
    rng = np.random.default_rng(seed)
    rows = [{"label": 0, "features": {k: float(rng.normal()) for k in
                                      ("fakeout", "identity", "audio_video")}} for _ in range(6)]
    rows += [{"label": 1, "features": {
        "fakeout": float(rng.normal()), "identity": float(rng.normal() + 0.5 * (i % 2 == 0)),
        "audio_video": float(rng.normal() + 1.0 * (i % 2 == 1))}} for i in range(12)]
    selection = calibration.fit(rows).fits["fakeout+identity+audio_video"].selection
    chosen, = [c for c in selection if c["chosen"]]
    bound = selection[0]["cv_log_loss"] + selection[0]["cv_log_loss_se"]
    exercised += any(c["cv_log_loss"] <= bound and not c["beats_base_rate"] for c in selection)
    if any(c["beats_base_rate"] for c in selection):
      assert chosen["beats_base_rate"], (seed, chosen)
    if seed == 2:  # FakeOut 0.669 within one standard error of audio_video's 0.587
      assert chosen["inputs"] == ["audio_video"]
  assert exercised >= 3


def test_one_standard_error_rule_takes_an_extra_input_that_earns_it():
  """With many faces the two branches' different strengths are not noise: the free weights are
  kept (their loss is more than one standard error below the equal-weight sum)."""
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 400)
  rows = [{"label": int(y), "features": {"identity": float(rng.normal() + 2.5 * y),
                                         "audio_video": float(rng.normal(0, 3.0))}}
          for y in labels]
  fit = calibration.fit(rows).fits["identity+audio_video"]
  assert "identity" in fit.features and "inconsistency" not in fit.features


def test_the_detectors_own_score_is_a_candidate_input(tmp_path):
  rng = np.random.default_rng(3)
  labels = np.r_[np.zeros(40), np.ones(40)].astype(int)
  # fakes move both branches together: their equal-weight sum is the best single input
  rows = [{"label": int(y), "features": {
      "identity": float(rng.normal() + 0.8 * y), "audio_video": float(rng.normal() + 0.8 * y)}}
      for y in labels]
  fitted = calibration.fit(rows)
  fit = fitted.fits["identity+audio_video"]
  assert fit.features in (("inconsistency",), ("identity", "audio_video"))
  loaded = calibration.Calibration.load(fitted.save(tmp_path / "c.json"))
  face = {"identity": 0.3, "audio_video": -0.1}
  assert loaded.probability(face) == fitted.probability(face)
  assert calibration.input_value(face, "inconsistency") == pytest.approx(0.2)


def test_bad_calibration_files_give_one_line_errors(tmp_path):
  with pytest.raises(calibration.CalibrationError, match="does not exist"):
    calibration.Calibration.load(tmp_path / "missing.json")
  (tmp_path / "x.json").write_text("{}")
  with pytest.raises(calibration.CalibrationError, match="not a calibration file"):
    calibration.Calibration.load(tmp_path / "x.json")
  # a file of format 1 (before the input selection) is still read
  fitted = calibration.fit(_logistic_rows(n=200)[0], selection="all")
  old_format = fitted.to_json()
  old_format["format_version"] = 1
  for fit in old_format["fits"].values():
    fit.pop("selection", None)
  (tmp_path / "v1.json").write_text(json.dumps(old_format))
  face = {"fakeout": 0.3, "identity": -0.2, "audio_video": 1.0}
  assert calibration.Calibration.load(tmp_path / "v1.json").probability(face) == \
      fitted.probability(face)


def test_features_are_oriented_higher_is_fake():
  f = calibration.face_features(0.9, intra=0.2, cross=-0.5)
  assert f["fakeout"] == pytest.approx(math.log(9)) and f["identity"] == -0.2
  assert f["audio_video"] == 0.5
  assert calibration.face_features(None, 0.1, None) == {"identity": -0.1}


def test_a_video_is_as_fake_as_its_most_suspicious_face():
  rows, _, _ = _logistic_rows(n=500)
  fitted = calibration.fit(rows)
  faces = []
  for k, (fo, intra) in enumerate([(0.2, 0.9), (0.95, 0.1)]):
    face = {"face": k, "fakeout": fo, "intra": intra, "cross": None}
    face.update(fusion.face_probability(face, fitted))
    face["inconsistency"] = fusion.inconsistency_score(intra, None)
    faces.append(face)
  video = fusion.video_verdict(faces, fitted)
  assert video["deciding_face"] == 1 and video["probability"] == faces[1]["probability"]
  assert video["verdict"] == ("fake" if faces[1]["probability"] >= 0.5 else "real")
  raw = fusion.video_verdict(faces, None)
  assert raw["probability"] is None and raw["verdict"] == "no verdict"
  assert "no probability" in raw["note"] and raw["fakeout_max"] == 0.95


def _complementary_rows(seed, n_real=60, n_per_kind=30):
  """Two kinds of fake: 'swap' seen by FakeOut only, 'lipsync' by the audio-video score only."""
  rng = np.random.default_rng(seed)
  rows = []

  def face(i, label, kind, fakeout_shift, cross_shift):
    p = 1 / (1 + np.exp(-(rng.normal() + fakeout_shift)))
    rows.append({"dataset": "s", "video_id": f"{kind}{i}", "track": 0, "label": label,
                 "category": "fake" if label else "real", "kind": kind,
                 "fakeout": float(p), "intra": float(rng.normal(0.8, 0.05)),
                 "cross": float(rng.normal(0.5, 0.1) - cross_shift)})

  for i in range(n_real):
    face(i, 0, "real", -1.0, 0.0)
  for i in range(n_per_kind):
    face(i, 1, "swap", 2.0, 0.0)
    face(i, 1, "lipsync", -1.0, 0.3)
  return rows


def _features(rows):
  return [{**r, "features": calibration.face_features(r["fakeout"], r["intra"], r["cross"])}
          for r in rows]


def test_fusion_beats_each_detector_when_they_see_different_fakes():
  cal = calibration.fit(_features(_complementary_rows(seed=0)))
  test = _complementary_rows(seed=1)
  groups = {r["video_id"]: r["kind"] for r in test}
  result = evaluation.evaluate(test, cal, groups)
  overall = result["overall"]
  assert overall["fused"]["auc"] > max(overall["fakeout"]["auc"],
                                       overall["inconsistency"]["auc"]) + 0.05
  kinds = result["per_kind"]
  assert kinds["swap"]["fakeout"]["auc"] > 0.9 > kinds["swap"]["inconsistency"]["auc"]
  assert kinds["lipsync"]["inconsistency"]["auc"] > 0.9 > kinds["lipsync"]["fakeout"]["auc"]
  for kind in ("swap", "lipsync"):
    assert kinds[kind]["fused"]["auc"] > 0.9
  assert result["calibration"]["fused"]["ece"] < 0.15
  assert result["compared"] == result["videos"] == len(test)
  table = evaluation.markdown(result)
  assert "| kind lipsync |" in table and "mean over kinds" in table and "ECE" in table


def test_videos_missing_a_score_are_left_out_of_every_comparison_and_counted():
  cal = calibration.fit(_features(_complementary_rows(seed=0)))
  test = _complementary_rows(seed=2)
  test[0]["intra"] = test[0]["cross"] = None  # too short for the inconsistency windows
  result = evaluation.evaluate(test, cal)
  assert result["compared"] == len(test) - 1
  assert result["left_out"] == {"no inconsistency": 1}
