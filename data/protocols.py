"""From per-track scores to the papers' tables: aggregation, metrics, tables and plots.

Both detectors write the same per-track scores CSV (:data:`SCORE_COLUMNS`, plus any extra columns
such as sub-scores). This module turns it into video-level scores (max over a video's tracks, as
both papers do), computes the metrics with scikit-learn, and renders tables in the papers' layout
as Markdown and CSV, with ROC curves and score histograms as PNG.

Score orientation: `score` is always "higher = more likely fake". The inconsistency detector's
consistency score (lower = more likely fake) is written negated in `score` and kept as is in its
own columns.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import pathlib
from typing import Callable, Iterable, Mapping, Optional, Sequence

import numpy as np
from sklearn import metrics as skmetrics

from data import constants

log = logging.getLogger(__name__)

SCORE_COLUMNS = ("video_id", "track", "dataset", "split", "category", "method", "label", "score")


class EvaluationError(ValueError):
  """An evaluation that cannot give a meaningful number (empty set, one class only)."""


# ----------------------------------------------------------------------------------------------
# Scores CSV


def write_scores(path: str | pathlib.Path, rows: Sequence[Mapping]) -> pathlib.Path:
  """Writes per-track (or per-video) rows; the SCORE_COLUMNS first, extra columns after."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  extra = sorted({k for row in rows for k in row} - set(SCORE_COLUMNS))
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(SCORE_COLUMNS) + extra, restval="")
    writer.writeheader()
    for row in rows:
      writer.writerow({k: plain_value(v) for k, v in row.items()})
  return path


def read_scores(path: str | pathlib.Path) -> list[dict]:
  path = pathlib.Path(path)
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  missing = set(SCORE_COLUMNS) - set(rows[0].keys() if rows else SCORE_COLUMNS)
  if missing:
    raise EvaluationError(f"{path} lacks the score columns {sorted(missing)}")
  for row in rows:
    row["label"] = int(row["label"])
    row["score"] = float(row["score"])
    row["track"] = int(row["track"] or 0)
  return rows


def plain_value(value):
  """A bytes or numpy scalar (as tf.data/numpy give them) as the plain Python value."""
  if isinstance(value, bytes):
    return value.decode()
  if isinstance(value, np.generic):
    return value.item()
  return value


# ----------------------------------------------------------------------------------------------
# Aggregation


def video_scores(track_rows: Iterable[Mapping],
                 reduce: Callable[[Sequence[float]], float] = max) -> list[dict]:
  """One row per (dataset, video_id): `reduce` (default max, as both papers) over its tracks.

  The row of the deciding track is kept (for the max: the most suspicious face), with
  `num_tracks` and `track` telling which one decided.
  """
  groups: dict[tuple, list[Mapping]] = {}
  for row in track_rows:
    groups.setdefault((row["dataset"], row["video_id"]), []).append(row)
  out = []
  for (_, video_id), rows in groups.items():
    labels = {int(r["label"]) for r in rows}
    if len(labels) != 1:
      raise EvaluationError(f"video {video_id!r} has tracks with different labels {labels}")
    value = reduce([float(r["score"]) for r in rows])
    deciding = min(rows, key=lambda r: abs(float(r["score"]) - value))
    out.append({**deciding, "score": value, "num_tracks": len(rows)})
  return out


# ----------------------------------------------------------------------------------------------
# Metrics


@dataclasses.dataclass(frozen=True)
class BinaryMetrics:
  auc: float
  ap: float
  accuracy: float
  num_real: int
  num_fake: int

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def binary_metrics(labels: Sequence[int], scores: Sequence[float],
                   threshold: float = 0.5) -> BinaryMetrics:
  """ROC-AUC, average precision and accuracy at `threshold` (scikit-learn), fake = positive."""
  labels = np.asarray(labels, np.int64)
  scores = np.asarray(scores, np.float64)
  if labels.size == 0:
    raise EvaluationError("no videos to evaluate: the evaluation set is empty")
  if labels.shape != scores.shape:
    raise EvaluationError(f"{labels.size} labels but {scores.size} scores")
  if not np.all(np.isfinite(scores)):
    raise EvaluationError(f"{int(np.sum(~np.isfinite(scores)))} scores are NaN or infinite")
  num_fake = int(np.sum(labels == constants.FAKE))
  num_real = int(np.sum(labels == constants.REAL))
  if num_fake == 0 or num_real == 0:
    raise EvaluationError(f"AUC needs both classes; got {num_real} real and {num_fake} fake "
                          "videos")
  return BinaryMetrics(
      auc=float(skmetrics.roc_auc_score(labels, scores)),
      ap=float(skmetrics.average_precision_score(labels, scores)),
      accuracy=float(skmetrics.accuracy_score(labels, scores >= threshold)),
      num_real=num_real, num_fake=num_fake)


def metrics_of_rows(rows: Sequence[Mapping], threshold: float = 0.5) -> BinaryMetrics:
  return binary_metrics([r["label"] for r in rows], [r["score"] for r in rows], threshold)


def per_category_metrics(rows: Sequence[Mapping], categories: Sequence[str],
                         threshold: float = 0.5) -> dict[str, BinaryMetrics]:
  """Each fake category against ALL real videos (the FakeAVCeleb protocol of both papers)."""
  reals = [r for r in rows if int(r["label"]) == constants.REAL]
  out = {}
  for category in categories:
    fakes = [r for r in rows if r["category"] == category and int(r["label"]) == constants.FAKE]
    if not fakes:
      log.warning("no fake videos of category %r; its column stays empty", category)
      continue
    out[category] = metrics_of_rows(reals + fakes, threshold)
  return out


def bootstrap_auc(rows: Sequence[Mapping], num_real: int, num_fake: int, draws: int,
                  seed: int = 0) -> tuple[float, float]:
  """Mean and std of the AUC over `draws` random subsets of num_real + num_fake videos (KoDF)."""
  reals = np.array([r["score"] for r in rows if int(r["label"]) == constants.REAL])
  fakes = np.array([r["score"] for r in rows if int(r["label"]) == constants.FAKE])
  if len(reals) < num_real or len(fakes) < num_fake:
    raise EvaluationError(f"need {num_real} real and {num_fake} fake videos per draw, have "
                          f"{len(reals)} and {len(fakes)}")
  rng = np.random.default_rng(seed)
  labels = np.r_[np.zeros(num_real), np.ones(num_fake)]
  aucs = [skmetrics.roc_auc_score(labels, np.r_[
      rng.choice(reals, num_real, replace=False), rng.choice(fakes, num_fake, replace=False)])
      for _ in range(draws)]
  return float(np.mean(aucs)), float(np.std(aucs))


def auc_confidence_interval(rows: Sequence[Mapping], draws: int = 2000, level: float = 0.95,
                            seed: int = 0) -> tuple[float, float]:
  """Percentile bootstrap interval of the ROC-AUC: reals and fakes resampled with replacement,
  each class keeping its size (so every draw has both). Tells how far a number can move when
  a test set holds a few videos; deterministic for a seed."""
  reals = np.array([float(r["score"]) for r in rows if int(r["label"]) == constants.REAL])
  fakes = np.array([float(r["score"]) for r in rows if int(r["label"]) == constants.FAKE])
  if not len(reals) or not len(fakes):
    raise EvaluationError(f"AUC needs both classes; got {len(reals)} real and {len(fakes)} fake "
                          "videos")
  rng = np.random.default_rng(seed)
  real_draws = rng.choice(reals, (draws, len(reals)))
  fake_draws = rng.choice(fakes, (draws, len(fakes)))
  # AUC = P(fake > real) + P(tie) / 2, computed for all draws at once.
  greater = (fake_draws[:, :, None] > real_draws[:, None, :]).mean(axis=(1, 2))
  ties = (fake_draws[:, :, None] == real_draws[:, None, :]).mean(axis=(1, 2))
  aucs = greater + ties / 2
  tail = (1 - level) / 2
  return float(np.quantile(aucs, tail)), float(np.quantile(aucs, 1 - tail))


def read_ground_truth(path: str | pathlib.Path, column: str) -> dict[str, str]:
  """video id (its path without suffix) -> `column` of a ground-truth CSV such as data.synth's
  synthetic_ground_truth.csv (key column: path, relative_path or video_id)."""
  with open(path, newline="", encoding="utf-8-sig") as f:
    rows = list(csv.DictReader(f))
  key = next((k for k in ("path", "relative_path", "video_id") if rows and k in rows[0]), None)
  if key is None or column not in rows[0]:
    raise ValueError(f"{path} needs a path (or relative_path / video_id) column and a {column!r}"
                     f" column; it has {list(rows[0]) if rows else 'no rows'}")
  return {str(pathlib.PurePosixPath(r[key].replace("\\", "/")).with_suffix("")): r[column]
          for r in rows}


# ----------------------------------------------------------------------------------------------
# Tables


@dataclasses.dataclass
class Table:
  """A paper table: rows x columns of numbers (None = not evaluated), rendered two ways."""
  title: str
  columns: Sequence[str]
  rows: dict[str, dict[str, Optional[float]]]
  percent: bool = True
  note: str = ""

  def _cell(self, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
      return "-"
    if isinstance(value, str):
      return value
    return f"{100 * value:.1f}" if self.percent else f"{value:.3f}"

  def markdown(self) -> str:
    header = "| | " + " | ".join(self.columns) + " |"
    lines = [f"**{self.title}**", "", header, "|" + "---|" * (len(self.columns) + 1)]
    for name, values in self.rows.items():
      lines.append(f"| {name} | " + " | ".join(self._cell(values.get(c))
                                               for c in self.columns) + " |")
    if self.note:
      lines += ["", self.note]
    return "\n".join(lines) + "\n"

  def csv(self) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", *self.columns])
    for name, values in self.rows.items():
      writer.writerow([name, *[plain_value(values.get(c, "")) if values.get(c) is not None else ""
                               for c in self.columns]])
    return buffer.getvalue()

  def save(self, directory: str | pathlib.Path, stem: str) -> list[pathlib.Path]:
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    md, cs = directory / f"{stem}.md", directory / f"{stem}.csv"
    md.write_text(self.markdown())
    cs.write_text(self.csv())
    return [md, cs]


# ----------------------------------------------------------------------------------------------
# Plots


def plot_roc_and_histograms(rows: Sequence[Mapping], path: str | pathlib.Path,
                            title: str = "", groups: Optional[str] = None) -> pathlib.Path:
  """ROC curve(s) and real/fake score histograms side by side, as one PNG.

  With `groups` (e.g. 'category'), one ROC curve per fake group against all real videos.
  """
  from data import report
  labels = np.array([int(r["label"]) for r in rows])
  scores = np.array([float(r["score"]) for r in rows])
  fig, (ax_roc, ax_hist) = report.figure(1, 2, figsize=(10, 4))
  curves = {"all": np.ones(len(rows), bool)}
  if groups:
    for name in sorted({r[groups] for r in rows if int(r["label"]) == constants.FAKE}):
      curves[name] = np.array([int(r["label"]) == constants.REAL or r[groups] == name
                               for r in rows])
  for name, keep in curves.items():
    if len(set(labels[keep])) < 2:
      continue
    fpr, tpr, _ = skmetrics.roc_curve(labels[keep], scores[keep])
    auc = skmetrics.roc_auc_score(labels[keep], scores[keep])
    ax_roc.plot(fpr, tpr, label=f"{name} (AUC {100 * auc:.1f})")
  ax_roc.plot([0, 1], [0, 1], "k:", lw=0.8)
  ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
  ax_roc.legend(fontsize=7, loc="lower right")
  bins = np.linspace(scores.min(), scores.max() + 1e-9, 30) if len(scores) else 10
  for value, name in ((constants.REAL, "real"), (constants.FAKE, "fake")):
    ax_hist.hist(scores[labels == value], bins=bins, alpha=0.6, label=name)
  ax_hist.set(xlabel="score (higher = more likely fake)", ylabel="videos", title="scores")
  ax_hist.legend()
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=110)
  return path
