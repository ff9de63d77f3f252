"""Faces -> one verdict: each face's calibrated probability, the video's = max over its faces.

A video is as suspicious as its most suspicious face (both papers score a video by its worst
track). Without a calibration file there is no probability and no verdict: the raw scores are
on unrelated scales (FakeOut: a probability from its own training, higher = fake; the
inconsistency detector: a similarity sum, lower = less consistent), and a threshold on either
would be a guess.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

from avdf import calibration as calibration_lib

NO_CALIBRATION = ("no probability: no calibration file was given (python -m avdf.detect "
                  "calibrate fits one on a labelled validation record set); raw scores only")


def verdict(probability: Optional[float], threshold: float) -> str:
  if probability is None:
    return "no verdict"
  return "fake" if probability >= threshold else "real"


def face_probability(face: Mapping, calibration: Optional[calibration_lib.Calibration]
                     ) -> dict:
  """{'features', 'probability', 'fit' (the subset used) or 'note'} of one face whose raw
  scores are face['fakeout'], face['intra'], face['cross'] (None = absent)."""
  features = calibration_lib.face_features(face.get("fakeout"), face.get("intra"),
                                           face.get("cross"))
  out = {"features": features, "probability": None, "fit": None, "note": None}
  if calibration is None:
    return out
  probability, used = calibration.probability(features)
  if probability is None:
    out["note"] = used
  else:
    out.update(probability=probability, fit=used)
  return out


def inconsistency_score(intra: Optional[float], cross: Optional[float]) -> Optional[float]:
  """The detector's own video score orientation: -(intra + cross), higher = more likely fake."""
  if intra is None:
    return None
  return -(intra + (cross or 0.0))


def video_verdict(faces: Sequence[Mapping], calibration: Optional[calibration_lib.Calibration]
                  ) -> dict:
  """The video's probability (max over faces with one), verdict, deciding face and raw maxima."""
  threshold = calibration.threshold if calibration is not None else None
  scored = [f for f in faces if f.get("probability") is not None]
  out = {"threshold": threshold, "probability": None, "deciding_face": None,
         "verdict": "no verdict"}
  for name in ("fakeout", "inconsistency"):
    values = [f[name] for f in faces if f.get(name) is not None]
    out[f"{name}_max"] = max(values) if values else None
  if calibration is None:
    out["note"] = NO_CALIBRATION
  elif not scored:
    out["note"] = "no face could be given a probability: " + "; ".join(
        sorted({f.get("note") or "no scores" for f in faces}))
  else:
    worst = max(scored, key=lambda f: f["probability"])
    out.update(probability=worst["probability"], deciding_face=worst["face"],
               verdict=verdict(worst["probability"], threshold))
  return out
