"""Each detector alone and fused, on labelled record sets: AUC / AP per category and per kind,
expected calibration error and a reliability diagram.

Scores per video are the max over its faces (both papers' rule, and the detect command's).
The three scores compared:

  fakeout        FakeOut's track probability (raw)
  inconsistency  -(Score_intra + Score_cross), the detector's own video score (raw)
  fused          the calibrated probability of all the face's scores (avdf.calibration)

Only videos that have all three are compared, so every AUC is on the same videos (how many were
left out, and why, is reported). ECE and the reliability diagram use the calibrated
probabilities: fused, and each detector alone through its own single-detector fit.
"""
from __future__ import annotations

import collections
from typing import Mapping, Optional, Sequence

import numpy as np

from avdf import calibration as calibration_lib
from avdf import fusion
from data import constants
from data import protocols

SCORES = ("fakeout", "inconsistency", "fused")
# the calibrated probability of each detector alone: its single-detector feature subsets
ALONE_FEATURES = {"fakeout": ("fakeout",), "inconsistency": ("identity", "audio_video")}


def face_scores(row: Mapping, calibration: calibration_lib.Calibration) -> dict:
  """Raw and calibrated scores of one face row of detectors.score_record_sets."""
  fused = fusion.face_probability(row, calibration)
  out = {"fakeout": row.get("fakeout"),
         "inconsistency": fusion.inconsistency_score(row.get("intra"), row.get("cross")),
         "fused": fused["probability"], "fused_fit": fused["fit"]}
  features = fused["features"]
  for name, wanted in ALONE_FEATURES.items():
    own = {k: v for k, v in features.items() if k in wanted}
    out[f"{name}_probability"] = calibration.probability(own)[0] if own else None
  return out


def video_rows(face_rows: Sequence[Mapping], calibration: calibration_lib.Calibration,
               groups: Optional[Mapping[str, str]] = None) -> list[dict]:
  """One row per video: label, category, kind and every score (max over its faces; None when
  no face has it)."""
  videos = collections.OrderedDict()
  for row in face_rows:
    key = (row["dataset"], row["video_id"])
    videos.setdefault(key, []).append({**row, **face_scores(row, calibration)})
  out = []
  for (dataset, video_id), faces in videos.items():
    video = {"dataset": dataset, "video_id": video_id, "label": int(faces[0]["label"]),
             "category": faces[0]["category"] or ("real" if faces[0]["label"] == constants.REAL
                                                  else "fake"),
             "kind": (groups or {}).get(video_id, ""), "faces": len(faces)}
    for name in (*SCORES, "fakeout_probability", "inconsistency_probability"):
      values = [f[name] for f in faces if f[name] is not None]
      video[name] = max(values) if values else None
    out.append(video)
  return out


def _metrics(videos: Sequence[Mapping], score: str) -> dict:
  m = protocols.binary_metrics([v["label"] for v in videos], [v[score] for v in videos])
  return {"auc": m.auc, "ap": m.ap, "real": m.num_real, "fake": m.num_fake}


def _grouped(videos: Sequence[Mapping], column: str) -> dict:
  """Each fake group of `column` against all real videos (the FakeAVCeleb protocol)."""
  reals = [v for v in videos if v["label"] == constants.REAL]
  names = sorted({v[column] for v in videos if v["label"] == constants.FAKE and v[column]})
  out = {}
  for name in names:
    subset = reals + [v for v in videos if v["label"] == constants.FAKE and v[column] == name]
    try:
      out[name] = {score: _metrics(subset, score) for score in SCORES}
    except protocols.EvaluationError:
      continue
  return out


def evaluate(face_rows: Sequence[Mapping], calibration: calibration_lib.Calibration,
             groups: Optional[Mapping[str, str]] = None, bins: int = 10) -> dict:
  """Every number of the evaluation (JSON-ready)."""
  videos = video_rows(face_rows, calibration, groups)
  complete = [v for v in videos if all(v[s] is not None for s in SCORES)]
  left_out = collections.Counter(
      "no " + ", no ".join(s for s in SCORES if v[s] is None)
      for v in videos if v not in complete)
  if not complete:
    raise protocols.EvaluationError(
        f"none of {len(videos)} videos has all three scores ({dict(left_out)})")
  result = {"videos": len(videos), "compared": len(complete), "left_out": dict(left_out),
            "overall": {s: _metrics(complete, s) for s in SCORES},
            "per_category": _grouped(complete, "category")}
  if groups:
    result["per_kind"] = _grouped(complete, "kind")
    if result["per_kind"]:
      result["kind_average"] = {s: float(np.mean([m[s]["auc"] for m in
                                                  result["per_kind"].values()]))
                                for s in SCORES}
  labels = [v["label"] for v in complete]
  result["calibration"] = {"method": calibration.method, "threshold": calibration.threshold,
                           "fused": calibration_lib.reliability(
                               labels, [v["fused"] for v in complete], bins)}
  for name in ALONE_FEATURES:
    probabilities = [v[f"{name}_probability"] for v in complete]
    if all(p is not None for p in probabilities):
      result["calibration"][name] = calibration_lib.reliability(labels, probabilities, bins)
  fused = np.array([v["fused"] for v in complete])
  result["fused_accuracy"] = float(np.mean((fused >= calibration.threshold) ==
                                           (np.array(labels) == constants.FAKE)))
  return {**result, "video_rows": videos}


def markdown(result: Mapping) -> str:
  """The README table: AUC (AP) of each score, overall, per kind (with their mean) and category;
  then the calibration error."""
  def cell(m):
    return f"{100 * m['auc']:.1f} ({100 * m['ap']:.1f})"

  lines = ["| videos | n real / fake | FakeOut | inconsistency | fused |", "|---|---|---|---|---|"]
  o = result["overall"]
  lines.append(f"| all | {o['fused']['real']} / {o['fused']['fake']} | "
               + " | ".join(cell(o[s]) for s in SCORES) + " |")
  for title, key in (("kind", "per_kind"), ("category", "per_category")):
    for name, m in result.get(key, {}).items():
      lines.append(f"| {title} {name} | {m['fused']['real']} / {m['fused']['fake']} | "
                   + " | ".join(cell(m[s]) for s in SCORES) + " |")
    if key == "per_kind" and "kind_average" in result:
      avg = result["kind_average"]
      lines.append("| mean over kinds (AUC) | | " + " | ".join(
          f"{100 * avg[s]:.1f}" for s in SCORES) + " |")
  lines += ["", "AUC (AP) in %, videos scored by their most suspicious face; each group's fakes "
                "against all real videos. " + f"{result['compared']} of {result['videos']} "
                "videos have every score" + (f" (left out: {result['left_out']})"
                                              if result["left_out"] else "") + ".", ""]
  cal = result["calibration"]
  lines.append("| calibrated probability | ECE | Brier |")
  lines.append("|---|---|---|")
  for name in ("fakeout", "inconsistency", "fused"):
    if name in cal:
      lines.append(f"| {name}{'' if name == 'fused' else ' alone'} | {cal[name]['ece']:.3f} | "
                   f"{cal[name]['brier']:.3f} |")
  lines += ["", f"{cal['method']} calibration; ECE over 10 equal-width bins; accuracy of the "
                f"fused verdict at {cal['threshold']}: {100 * result['fused_accuracy']:.1f}%."]
  return "\n".join(lines) + "\n"


def reliability_figure(result: Mapping):
  """Reliability diagram (frequency of fakes vs. mean probability per bin) and bin counts."""
  from data import report
  fig, (ax, ax_count) = report.figure(1, 2, figsize=(10, 4))
  ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="perfectly calibrated")
  for name, style in (("fused", "o-"), ("fakeout", "s--"), ("inconsistency", "^--")):
    cal = result["calibration"].get(name)
    if cal is None:
      continue
    bins = [b for b in cal["bins"] if b["count"]]
    ax.plot([b["mean_probability"] for b in bins], [b["fraction_fake"] for b in bins], style,
            label=f"{name} (ECE {cal['ece']:.3f})")
  ax.set(xlabel="mean predicted fake probability", ylabel="fraction of fake videos",
         xlim=(0, 1), ylim=(0, 1), title="Reliability")
  ax.legend(fontsize=8)
  bins = result["calibration"]["fused"]["bins"]
  ax_count.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["count"] for b in bins],
               width=0.09)
  ax_count.set(xlabel="fused fake probability", ylabel="videos", title="Videos per bin")
  fig.tight_layout()
  return fig
