"""Per-detector scores of a face -> one calibrated fake probability (scikit-learn fits).

The features of a face track, all oriented "higher = more likely fake":

  fakeout      logit of FakeOut's track score (mean clip fake probability)
  identity     -Score_intra of the inconsistency detector (identity consistency over time)
  audio_video  -Score_cross of the inconsistency detector (lip/voice agreement); absent for a
               track without audio

A face does not always have every feature (no audio; too short for the inconsistency windows;
one detector not run), so a calibration holds one fit per non-empty subset of the features,
each fitted on the labelled faces that have that subset; a face is scored by the fit of exactly
the features it has.

Which of its features a fit uses is chosen by cross-validation on the calibration set itself
(selection='cross_validated', the default): every non-empty combination of the features, plus
the inconsistency detector's own score (identity + audio_video with equal weights, the paper's
Score_intra + Score_cross) in place of its two branches, is scored by its cross-validated log
loss, and the one-standard-error rule picks (Hastie, Tibshirani & Friedman, The Elements of
Statistical Learning, Sec. 7.10): of the candidates whose loss is within one standard error of
the lowest (the standard error of the lowest candidate's mean over its held-out faces), the one
with the fewest inputs; among as many inputs, a detector's own score before one of its branches
alone, then the lower loss. A validation set has tens of faces; a free
weight per input fitted on them rewards noise (a detector at chance on that set gets a weight
anyway, two branches get unequal weights that a new set does not bear out), so the fused score
could rank test videos worse than the best detector alone: an extra weight has to earn more
than the noise of its own estimate. selection='lowest' takes the lowest loss outright (ties:
fewer inputs); selection='all' uses every feature. Methods:

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
# Inputs computed from features: the inconsistency detector's own score.
DERIVED = {"inconsistency": ("identity", "audio_video")}
METHODS = ("logistic", "isotonic")
SELECTIONS = ("cross_validated", "lowest", "all")
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
# Folds of the input selection: at most this many, at most the smaller class's count.
MAX_FOLDS = 10
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
  return "+".join(f for f in (*FEATURES, *DERIVED) if f in features)


def input_value(features: Mapping[str, float], name: str) -> float:
  """A feature, or a derived input (the sum of its features)."""
  if name in DERIVED:
    return float(sum(features[part] for part in DERIVED[name]))
  return float(features[name])


def candidate_inputs(available: Sequence[str]) -> list[tuple]:
  """Every input combination a fit over `available` may use (never a derived input together
  with one of its own parts)."""
  names = [f for f in FEATURES if f in available]
  pool = names + [d for d, parts in DERIVED.items() if all(p in names for p in parts)]
  out = []
  for size in range(1, len(pool) + 1):
    for combo in itertools.combinations(pool, size):
      if not any(d in combo and set(DERIVED[d]) & set(combo) for d in DERIVED):
        out.append(combo)
  return out


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
  # the candidates of the input selection, lowest loss first: [{'inputs', 'cv_log_loss',
  # 'cv_log_loss_se', 'beats_base_rate', 'chosen'}]
  selection: Optional[list] = None

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


def _logistic():
  from sklearn.linear_model import LogisticRegression
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler
  return make_pipeline(StandardScaler(), LogisticRegression(C=1.0))


def drops_a_branch(inputs: Sequence[str], available: Sequence[str]) -> bool:
  """Whether `inputs` keep only some branches of a detector whose every branch is available
  (identity without audio_video when the face has both): a departure from that detector's own
  score that the one-standard-error rule makes earn its place like an extra input."""
  return any(all(p in available for p in parts) and
             0 < sum(p in inputs for p in parts) < len(parts)
             for parts in DERIVED.values())


def _folds(labels: np.ndarray):
  """Stratified folds in file order (deterministic), as many as the smaller class allows."""
  from sklearn.model_selection import StratifiedKFold
  return StratifiedKFold(min(MAX_FOLDS, int(labels.sum()), int((labels == 0).sum())))


def _log_losses(labels: np.ndarray, p: np.ndarray) -> np.ndarray:
  p = np.clip(p, 1e-12, 1 - 1e-12)
  return -(labels * np.log(p) + (1 - labels) * np.log(1 - p))


def held_out_log_losses(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """Each face's log loss under the standardised logistic fit of the folds that held it out."""
  from sklearn.model_selection import cross_val_predict
  return _log_losses(labels, cross_val_predict(_logistic(), x, labels, cv=_folds(labels),
                                               method="predict_proba")[:, 1])


def base_rate_log_losses(labels: np.ndarray) -> np.ndarray:
  """Each face's log loss when the folds that held it out predict only their fraction of fakes
  (no input at all): the loss an input must beat to carry any information."""
  p = np.empty(labels.size, np.float64)
  for train, held_out in _folds(labels).split(np.zeros(labels.size), labels):
    p[held_out] = labels[train].mean()
  return _log_losses(labels, p)


def cv_log_loss(x: np.ndarray, labels: np.ndarray) -> float:
  """Mean held-out log loss of the standardised logistic fit."""
  return float(np.mean(held_out_log_losses(x, labels)))


def select_inputs(rows: Sequence[Mapping], labels: np.ndarray, available: Sequence[str],
                  rule: str = "one_standard_error") -> list[dict]:
  """Every candidate input combination with its cross-validated log loss (and the standard
  error of that mean), lowest loss first; the one `rule` picks is marked ``chosen``.

  rule: 'one_standard_error' (the fewest inputs within one standard error of the lowest loss;
  then a detector's own score before one of its branches alone; then the lower loss; where
  some candidate's loss is below the base rate's - the fraction of fakes predicted for every
  face - only such candidates) or 'lowest' (the lowest loss, ties to fewer inputs). Each
  candidate records ``beats_base_rate``."""
  if rule not in ("one_standard_error", "lowest"):
    raise CalibrationError(f"unknown selection rule {rule!r}")
  base_rate = float(base_rate_log_losses(labels).mean())
  scored = []
  for inputs in candidate_inputs(available):
    x = np.array([[input_value(r["features"], n) for n in inputs] for r in rows], np.float64)
    losses = held_out_log_losses(x, labels)
    scored.append({"inputs": list(inputs), "cv_log_loss": float(losses.mean()),
                   "cv_log_loss_se": float(losses.std(ddof=1) / math.sqrt(losses.size)),
                   "beats_base_rate": bool(losses.mean() < base_rate)})
  scored.sort(key=lambda c: (round(c["cv_log_loss"], 9), len(c["inputs"])))
  chosen = scored[0]
  if rule == "one_standard_error":
    # An input no better than the base rate is no simpler explanation, only a noisier one: on
    # the demo's 18 val faces FakeOut at chance (loss 0.670 against the base rate's 0.637) was
    # within one standard error of the best and, as one detector's own score, was chosen.
    # Where nothing beats the base rate, the data cannot rank the inputs: the simplest stays.
    informative = chosen["beats_base_rate"]
    bound = scored[0]["cv_log_loss"] + scored[0]["cv_log_loss_se"]
    chosen = min((c for c in scored if c["cv_log_loss"] <= bound and
                  (c["beats_base_rate"] or not informative)),
                 key=lambda c: (len(c["inputs"]), drops_a_branch(c["inputs"], available),
                                round(c["cv_log_loss"], 9)))
  for c in scored:
    c["chosen"] = c is chosen
  return scored


def fit_subset(x: np.ndarray, labels: np.ndarray, features: Sequence[str], method: str,
               bins: int = 10) -> Fit:
  """The fit of the inputs `features` (columns of x)."""
  from sklearn.isotonic import IsotonicRegression
  model = _logistic().fit(x, labels)
  scaler, logistic = model[0], model[-1]
  mean = scaler.mean_
  scale = np.where(scaler.scale_ > 1e-12, scaler.scale_, 1.0)  # sklearn leaves constants at 1
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
    """(fake probability, the fit used: the key of the face's features) of one face's features;
    (None, reason) if none fits."""
    fit = self.fit_for(list(features))
    if not features:
      return None, "no detector score"
    if fit is None:
      reason = self.skipped.get(subset_key(list(features)), "not fitted")
      return None, f"no calibration for {subset_key(list(features))}: {reason}"
    x = np.array([[input_value(features, f) for f in fit.features]], np.float64)
    return float(fit.probability(x)[0]), subset_key(list(features))

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
    if not isinstance(data, dict) or data.get("format_version") not in READABLE_VERSIONS:
      raise CalibrationError(
          f"{path} is not a calibration file of format "
          f"{' or '.join(map(str, READABLE_VERSIONS))} (written by python -m avdf.detect "
          "calibrate)")
    return cls(method=data["method"], threshold=float(data["threshold"]),
               fits={k: Fit.from_json(v) for k, v in data["fits"].items()},
               source=data.get("source", {}), rows=data.get("rows", []),
               skipped=data.get("skipped", {}))


def fit(rows: Sequence[Mapping], method: str = "logistic", threshold: float = 0.5,
        source: Optional[dict] = None, bins: int = 10,
        selection: str = "cross_validated") -> Calibration:
  """Fits every feature subset on labelled face rows ({'label', 'features': {name: value}})."""
  if method not in METHODS:
    raise CalibrationError(f"unknown calibration method {method!r}; use one of {METHODS}")
  if selection not in SELECTIONS:
    raise CalibrationError(f"unknown input selection {selection!r}; use one of {SELECTIONS}")
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
      candidates = None
      inputs = subset
      if selection != "all":
        candidates = select_inputs(usable, labels, subset, rule=(
            "lowest" if selection == "lowest" else "one_standard_error"))
        inputs = tuple(next(c for c in candidates if c["chosen"])["inputs"])
      x = np.array([[input_value(r["features"], n) for n in inputs] for r in usable],
                   np.float64)
      fits[key] = fit_subset(x, labels, inputs, method, bins)
      fits[key].selection = candidates
  if not fits:
    raise CalibrationError("no feature subset could be fitted: " + "; ".join(
        f"{k}: {v}" for k, v in skipped.items()))
  source = dict(source or {})
  source.setdefault("selection", selection)
  source.setdefault("fitted", datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="seconds"))
  return Calibration(method=method, fits=fits, threshold=threshold, source=source,
                     rows=[dict(r) for r in rows], skipped=skipped)
