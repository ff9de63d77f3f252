"""Scores and explanations of the inconsistency detector on embeddings with known structure."""
import numpy as np
import pytest

from inconsistency_jax import scoring


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _consistent_track(t=8, d=16, seed=0, noise=0.05):
  rng = np.random.default_rng(seed)
  base = rng.standard_normal(d)
  mu = _unit(base + noise * rng.standard_normal((t, d)))
  gamma = _unit(rng.standard_normal((t, d)))
  alpha = _unit(gamma + noise * rng.standard_normal((t, d)))
  return mu, gamma, alpha


def test_scores_follow_the_definitions():
  mu, gamma, alpha = _consistent_track()
  score = scoring.score_track(mu, gamma, alpha, percentile=10)
  assert score.intra == pytest.approx(np.percentile(mu @ mu.T, 10))
  assert score.cross == pytest.approx(np.mean(np.sum(gamma * alpha, axis=1)))
  assert score.total == pytest.approx(score.intra + score.cross)
  assert score.identity_matrix.shape == score.cross_matrix.shape == (8, 8)


def test_identity_drift_and_desync_lower_the_score_and_are_located():
  mu, gamma, alpha = _consistent_track(seed=1)
  real = scoring.score_track(mu, gamma, alpha)
  drifted = mu.copy()
  drifted[5] = _unit(np.random.default_rng(2).standard_normal(mu.shape[1]))
  desynced = alpha.copy()
  desynced[2] = alpha[6]
  fake = scoring.score_track(drifted, gamma, desynced)
  assert fake.total < real.total and fake.intra < real.intra and fake.cross < real.cross
  assert scoring.score_track(drifted, gamma, desynced).least_consistent_windows(
      1, "intra").tolist() == [5]
  assert fake.least_consistent_windows(1, "cross").tolist() == [2]


def test_video_scores_its_least_consistent_track():
  tracks = [scoring.score_track(*_consistent_track(seed=s)) for s in range(3)]
  tracks.append(scoring.score_track(_unit(np.random.default_rng(9).standard_normal((8, 16)))))
  index, worst = scoring.video_score(tracks)
  assert index == 3 and not worst.has_audio and worst.total == worst.intra
  with pytest.raises(ValueError, match="at least one"):
    scoring.video_score([])


def test_window_plan_and_time_ranges():
  plan = scoring.plan_windows(num_frames=100, window_frames=10, num_windows=4)
  assert plan.starts.tolist() == [0, 30, 60, 90] and not plan.reduced
  timestamps = np.arange(100) / 25.0
  assert plan.time_ranges(timestamps)[1] == pytest.approx((1.2, 1.6))
  short = scoring.plan_windows(num_frames=35, window_frames=10, num_windows=8)
  assert short.num_windows == 3 and short.reduced
  with pytest.raises(scoring.TooShortError, match="holds 1 window"):
    scoring.plan_windows(num_frames=15, window_frames=10, num_windows=8)


def test_bad_shapes_are_refused():
  mu, gamma, alpha = _consistent_track()
  with pytest.raises(ValueError, match="gamma and alpha must both be"):
    scoring.score_track(mu, gamma[:4], alpha)
  with pytest.raises(ValueError, match="modality must be one of"):
    scoring.score_track(mu).least_consistent_windows(modality="cross")
