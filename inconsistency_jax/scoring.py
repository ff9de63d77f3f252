"""Inference of Tian et al.: similarity matrices, the consistency score and its explanation.

For one face track split into T windows (identity embeddings mu(t), visual gamma(t), audio
alpha(t), all unit norm):

* identity similarity matrix  S[t, q] = <mu(t), mu(q)>          (T x T)
* video-audio similarity matrix C[t, q] = <gamma(t), alpha(q)>   (T x T)
* Score_intra = the n-th percentile of S's entries (a low percentile catches a few windows whose
  identity departs from the rest); Score_cross = mean of C's diagonal (how well each window's
  video agrees with its own audio); Score = Score_intra + Score_cross.
* Lower = less consistent = more likely fake. A video with several tracks scores its least
  consistent track. A track without audio gets Score = Score_intra, flagged ``has_audio=False``.

Explanations rank windows by their own consistency: window t's identity consistency is the
n-th percentile of row t of S without the diagonal, its cross-modal consistency is C[t, t].
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

DEFAULT_PERCENTILE = 5.0
MIN_WINDOWS = 2


class TooShortError(ValueError):
  """The track holds fewer than MIN_WINDOWS windows: no similarity matrix can be formed."""


@dataclasses.dataclass(frozen=True)
class WindowPlan:
  """Where the T windows of a track start (frame indices), and whether fewer than asked fit."""
  starts: np.ndarray
  window_frames: int
  requested: int

  @property
  def num_windows(self) -> int:
    return len(self.starts)

  @property
  def reduced(self) -> bool:
    return self.num_windows < self.requested

  def time_ranges(self, timestamps: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of every window, from the track's frame timestamps."""
    timestamps = np.asarray(timestamps, np.float64)
    step = float(np.median(np.diff(timestamps))) if len(timestamps) > 1 else 0.0
    return [(float(timestamps[s]), float(timestamps[s + self.window_frames - 1] + step))
            for s in self.starts]


def plan_windows(num_frames: int, window_frames: int, num_windows: int) -> WindowPlan:
  """T non-overlapping windows spread evenly over the track (linspace starts).

  A track too short for T windows gets as many as fit (``reduced`` is then True); fewer than
  MIN_WINDOWS raises TooShortError with the lengths involved.
  """
  if window_frames <= 0 or num_windows <= 0:
    raise ValueError(f"window_frames and num_windows must be positive, got {window_frames}, "
                     f"{num_windows}")
  fit = num_frames // window_frames
  count = min(num_windows, fit)
  if count < MIN_WINDOWS:
    raise TooShortError(
        f"a track of {num_frames} frames holds {fit} window(s) of {window_frames} frames; "
        f"at least {MIN_WINDOWS} are needed to compare windows")
  starts = np.linspace(0, num_frames - window_frames, count).round().astype(np.int64)
  return WindowPlan(starts=starts, window_frames=window_frames, requested=num_windows)


def identity_similarity_matrix(mu: np.ndarray) -> np.ndarray:
  mu = np.asarray(mu, np.float64)
  return mu @ mu.T


def cross_modal_similarity_matrix(gamma: np.ndarray, alpha: np.ndarray) -> np.ndarray:
  return np.asarray(gamma, np.float64) @ np.asarray(alpha, np.float64).T


@dataclasses.dataclass
class TrackScore:
  """Scores of one track; `identity_matrix` / `cross_matrix` are kept for explanations."""
  intra: float
  cross: Optional[float]
  identity_matrix: np.ndarray
  cross_matrix: Optional[np.ndarray]
  percentile: float

  @property
  def has_audio(self) -> bool:
    return self.cross is not None

  @property
  def total(self) -> float:
    return self.intra + (self.cross if self.cross is not None else 0.0)

  def window_consistency(self) -> dict[str, np.ndarray]:
    """Per-window identity consistency (row percentile off the diagonal) and cross C[t, t]."""
    s = self.identity_matrix
    t = len(s)
    off_diagonal = s[~np.eye(t, dtype=bool)].reshape(t, t - 1)
    out = {"intra": np.percentile(off_diagonal, self.percentile, axis=1)}
    if self.cross_matrix is not None:
      out["cross"] = np.diag(self.cross_matrix).copy()
    return out

  def least_consistent_windows(self, k: int = 3, modality: str = "total") -> np.ndarray:
    """Indices of the k windows with the lowest consistency ('intra', 'cross' or 'total')."""
    per_window = self.window_consistency()
    if modality == "total":
      values = per_window["intra"] + per_window.get("cross", 0.0)
    elif modality in per_window:
      values = per_window[modality]
    else:
      raise ValueError(f"modality must be one of {['total', *per_window]}, got {modality!r}")
    return np.argsort(values, kind="stable")[:k]


def score_track(mu: np.ndarray, gamma: Optional[np.ndarray] = None,
                alpha: Optional[np.ndarray] = None,
                percentile: float = DEFAULT_PERCENTILE) -> TrackScore:
  """mu, gamma, alpha: [T, d] unit-norm window embeddings (gamma/alpha None without audio)."""
  if mu.ndim != 2 or len(mu) < MIN_WINDOWS:
    raise ValueError(f"mu must be [T >= {MIN_WINDOWS}, d], got shape {np.shape(mu)}")
  identity = identity_similarity_matrix(mu)
  cross_matrix = cross = None
  if alpha is not None:
    if gamma is None or np.shape(gamma) != np.shape(alpha) or len(gamma) != len(mu):
      raise ValueError(f"gamma and alpha must both be [T={len(mu)}, d], got "
                       f"{np.shape(gamma)} and {np.shape(alpha)}")
    cross_matrix = cross_modal_similarity_matrix(gamma, alpha)
    cross = float(np.mean(np.diag(cross_matrix)))
  return TrackScore(intra=float(np.percentile(identity, percentile)), cross=cross,
                    identity_matrix=identity, cross_matrix=cross_matrix, percentile=percentile)


def video_score(track_scores: Sequence[TrackScore]) -> tuple[int, TrackScore]:
  """The least consistent track decides: returns (its index, its score)."""
  if not track_scores:
    raise ValueError("a video needs at least one scored track")
  index = int(np.argmin([s.total for s in track_scores]))
  return index, track_scores[index]
