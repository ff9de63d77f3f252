"""Per-detector scores of a face -> one calibrated fake probability (scikit-learn fits).

The features of a face track, all oriented "higher = more likely fake":

  fakeout      logit of FakeOut's track score (mean clip fake probability)
  identity     -Score_intra of the inconsistency detector (identity consistency over time)
  audio_video  -Score_cross of the inconsistency detector (lip/voice agreement); absent for a
               track without audio

A face does not always have every feature (no audio; too short for the inconsistency windows;
one detector not run), so a calibration holds one fit per non-empty subset of the features,
each fitted on the labelled faces that have that subset; a face is scored by the fit of exactly
the features it has. Methods:

  logistic   standardised features -> sklearn LogisticRegression (Platt scaling for one feature)
  isotonic   the same logistic combination, then sklearn IsotonicRegression on its log-odds
             (monotone, so it keeps the logistic ranking but fits any reliability curve)

The file stores every fit's numbers, the rows it was fitted on, and its reliability (ECE and
binned confidence vs. frequency) on those rows, so a calibration can be audited and re-fitted.
"""
from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import math
import pathlib
from typing import Mapping, Optional, Sequence

import numpy as np

FEATURES = ("fakeout", "identity", "audio_video")
METHODS = ("logistic", "isotonic")
FORMAT_VERSION = 1
_LOGIT_EPS = 1e-4
# A fit needs at least this many faces of each class; fewer gives no fit for that subset.
MIN_PER_CLASS = 3


class CalibrationError(ValueError):
  """A calibration cannot be fitted or read; the message says why."""


def fakeout_feature(probability: float) -> float:
  """FakeOut's probability as log-odds (clipped), the scale a logistic fit is linear in."""
  p = min(max(float(probability), _LOGIT_EPS), 1.0 - _LOGIT_EPS)
  return math.log(p / (1.0 - p))


def face_features(fakeout: Optional[float], intra: Optional[float],
                  cross: Optional[float]) -> dict[str, float]:
  """The available features of one face from the detectors' raw outputs (None = absent)."""
  out = {}
  if fakeout is not None and np.isfinite(fakeout):
    out["fakeout"] = fakeout_feature(fakeout)
  if intra is not None and np.isfinite(intra):
    out["identity"] = -float(intra)
  if cross is not None and np.isfinite(cross):
    out["audio_video"] = -float(cross)
  return out


def subset_key(features: Sequence[str]) -> str:
  return "+".join(f for f in FEATURES if f in features)


# ----------------------------------------------------------------------------------------------
# Reliability


def reliability(labels: Sequence[int], probabilities: Sequence[float], bins: int = 10) -> dict:
  """Expected calibration error over `bins` equal-width bins and the per-bin numbers.

  ECE = sum over bins of (faces in bin / faces) * |fraction fake - mean probability|.
  """
  labels = np.asarray(labels, np.float64)
  probabilities = np.asarray(probabilities, np.float64)
  if labels.size == 0:
    raise CalibrationError("reliability of an empty set")
  edges = np.linspace(0.0, 1.0, bins + 1)
  index = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
  table, ece = [], 0.0
  for b in range(bins):
    member = index == b
    count = int(member.sum())
    row = {"low": float(edges[b]), "high": float(edges[b + 1]), "count": count}
    if count:
      row["mean_probability"] = float(probabilities[member].mean())
      row["fraction_fake"] = float(labels[member].mean())
      ece += count / labels.size * abs(row["fraction_fake"] - row["mean_probability"])
    table.append(row)
  brier = float(np.mean((probabilities - labels) ** 2))
  return {"ece": float(ece), "brier": brier, "bins": table, "count": int(labels.size)}


# ----------------------------------------------------------------------------------------------
# One fit


@dataclasses.dataclass
class Fit:
  """The calibration of one feature subset: numbers enough to apply it without scikit-learn."""
  features: tuple
  method: str
  mean: list
  scale: list
  coef: list
  intercept: float
  isotonic_x: Optional[list] = None
  isotonic_y: Optional[list] = None
  count: int = 0
  num_fake: int = 0
  reliability: Optional[dict] = None

  def log_odds(self, x: np.ndarray) -> np.ndarray:
    z = (np.asarray(x, np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
    return z @ np.asarray(self.coef) + self.intercept

  def probability(self, x: np.ndarray) -> np.ndarray:
    """x: [n, len(features)] -> [n] fake probabilities."""
    z = self.log_odds(x)
    if self.method == "isotonic":
      return np.interp(z, self.isotonic_x, self.isotonic_y)
    return 1.0 / (1.0 + np.exp(-z))

  def to_json(self) -> dict:
    return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

  @classmethod
  def from_json(cls, data: Mapping) -> "Fit":
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{**{k: v for k, v in data.items() if k in fields},
                  "features": tuple(data["features"])})


def fit_subset(x: np.ndarray, labels: np.ndarray, features: Sequence[str], method: str,
               bins: int = 10) -> Fit:
  from sklearn.isotonic import IsotonicRegression
  from sklearn.linear_model import LogisticRegression
  mean = x.mean(axis=0)
  scale = x.std(axis=0)
  scale = np.where(scale > 1e-12, scale, 1.0)  # a constant feature gets weight ~0, not NaN
  logistic = LogisticRegression(C=1.0).fit((x - mean) / scale, labels)
  fit = Fit(features=tuple(features), method=method, mean=mean.tolist(), scale=scale.tolist(),
            coef=logistic.coef_[0].tolist(), intercept=float(logistic.intercept_[0]),
            count=int(labels.size), num_fake=int(labels.sum()))
  if method == "isotonic":
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True)
    iso.fit(fit.log_odds(x), labels)
    fit.isotonic_x = iso.X_thresholds_.tolist()
    fit.isotonic_y = iso.y_thresholds_.tolist()
  fit.reliability = reliability(labels, fit.probability(x), bins)
  return fit


# ----------------------------------------------------------------------------------------------
# The calibration file


@dataclasses.dataclass
class Calibration:
  """Every subset's fit, the verdict threshold, and what they were fitted on."""
  method: str
  fits: dict
  threshold: float = 0.5
  source: dict = dataclasses.field(default_factory=dict)
  rows: list = dataclasses.field(default_factory=list)
  skipped: dict = dataclasses.field(default_factory=dict)

  def fit_for(self, available: Sequence[str]) -> Optional[Fit]:
    """The fit of exactly the available features (None when that subset could not be fit)."""
    return self.fits.get(subset_key(available))

  def probability(self, features: Mapping[str, float]) -> tuple[Optional[float], str]:
    """(fake probability, the fit used) of one face's features; (None, reason) if none fits."""
    fit = self.fit_for(list(features))
    if not features:
      return None, "no detector score"
    if fit is None:
      reason = self.skipped.get(subset_key(list(features)), "not fitted")
      return None, f"no calibration for {subset_key(list(features))}: {reason}"
    x = np.array([[features[f] for f in fit.features]], np.float64)
    return float(fit.probability(x)[0]), subset_key(fit.features)

  def to_json(self) -> dict:
    return {"format_version": FORMAT_VERSION, "method": self.method,
            "threshold": self.threshold, "features": list(FEATURES),
            "source": self.source, "fits": {k: f.to_json() for k, f in self.fits.items()},
            "skipped": self.skipped, "rows": self.rows}

  def save(self, path: str | pathlib.Path) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
    return path

  @classmethod
  def load(cls, path: str | pathlib.Path) -> "Calibration":
    path = pathlib.Path(path)
    try:
      data = json.loads(path.read_text())
    except FileNotFoundError:
      raise CalibrationError(f"calibration file {path} does not exist; write one with "
                             "python -m avdf.detect calibrate") from None
    except json.JSONDecodeError as e:
      raise CalibrationError(f"{path} is not a calibration file (invalid JSON: {e})") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
      raise CalibrationError(f"{path} is not a calibration file of format {FORMAT_VERSION} "
                             "(written by python -m avdf.detect calibrate)")
    return cls(method=data["method"], threshold=float(data["threshold"]),
               fits={k: Fit.from_json(v) for k, v in data["fits"].items()},
               source=data.get("source", {}), rows=data.get("rows", []),
               skipped=data.get("skipped", {}))


def fit(rows: Sequence[Mapping], method: str = "logistic", threshold: float = 0.5,
        source: Optional[dict] = None, bins: int = 10) -> Calibration:
  """Fits every feature subset on labelled face rows ({'label', 'features': {name: value}})."""
  if method not in METHODS:
    raise CalibrationError(f"unknown calibration method {method!r}; use one of {METHODS}")
  if not 0.0 < threshold < 1.0:
    raise CalibrationError(f"the threshold is a probability in (0, 1); got {threshold}")
  fits, skipped = {}, {}
  for size in range(len(FEATURES), 0, -1):
    for subset in itertools.combinations(FEATURES, size):
      usable = [r for r in rows if all(f in r["features"] for f in subset)]
      labels = np.array([int(r["label"]) for r in usable], np.int64)
      num_fake, num_real = int(labels.sum()), int((labels == 0).sum())
      key = subset_key(subset)
      if min(num_fake, num_real) < MIN_PER_CLASS:
        skipped[key] = (f"{num_real} real and {num_fake} fake faces have these scores (need "
                        f">= {MIN_PER_CLASS} of each)")
        continue
      x = np.array([[r["features"][f] for f in subset] for r in usable], np.float64)
      fits[key] = fit_subset(x, labels, subset, method, bins)
  if not fits:
    raise CalibrationError("no feature subset could be fitted: " + "; ".join(
        f"{k}: {v}" for k, v in skipped.items()))
  source = dict(source or {})
  source.setdefault("fitted", datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="seconds"))
  return Calibration(method=method, fits=fits, threshold=threshold, source=source,
                     rows=[dict(r) for r in rows], skipped=skipped)
