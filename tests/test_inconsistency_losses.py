"""Eq. 2 and Eq. 3, vectorised, against literal loops over the paper's sums (values and grads)."""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inconsistency_jax import losses


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _embeddings(seed, n=3, t=4, d=8):
  return _unit(np.random.default_rng(seed).standard_normal((n, t, d)))


def _literal_intra(mu, tau, exclude_same_window=False):
  n, t, _ = mu.shape
  total, count = 0.0, 0
  for i, tt, q in itertools.product(range(n), range(t), range(t)):
    if exclude_same_window and tt == q:
      continue
    numerator = math.exp(float(np.dot(mu[i, tt], mu[i, q])) / tau)
    denominator = sum(math.exp(float(np.dot(mu[i, tt], mu[j, q])) / tau) for j in range(n))
    total += math.log(numerator / denominator)
    count += 1
  return -total / count


def _literal_cross(gamma, alpha, tau):
  n, t, _ = gamma.shape
  total = 0.0
  for i, tt in itertools.product(range(n), range(t)):
    positive = math.exp(float(np.dot(gamma[i, tt], alpha[i, tt])) / tau)
    over_audio = sum(math.exp(float(np.dot(gamma[i, tt], alpha[i, q])) / tau) for q in range(t))
    over_video = sum(math.exp(float(np.dot(gamma[i, q], alpha[i, tt])) / tau) for q in range(t))
    total += math.log(positive / over_audio) + math.log(positive / over_video)
  return -total / (2 * n * t)


@pytest.mark.parametrize("exclude", [False, True])
def test_intra_modal_loss_matches_literal_equation(exclude):
  mu = _embeddings(0)
  ours = losses.intra_modal_loss(jnp.asarray(mu), tau=0.1, exclude_same_window=exclude)
  assert float(ours) == pytest.approx(_literal_intra(mu, 0.1, exclude), abs=1e-5)


def test_cross_modal_loss_matches_literal_equation():
  gamma, alpha = _embeddings(1), _embeddings(2)
  ours = losses.cross_modal_loss(jnp.asarray(gamma), jnp.asarray(alpha), tau=0.07)
  assert float(ours) == pytest.approx(_literal_cross(gamma, alpha, 0.07), abs=1e-5)


def test_similarity_tensor_layouts():
  mu, gamma, alpha = _embeddings(3), _embeddings(4), _embeddings(5)
  s = losses.identity_similarities(jnp.asarray(mu))
  assert s.shape == (4, 4, 3, 3)  # T x T x N x N
  assert float(s[1, 2, 0, 2]) == pytest.approx(float(mu[0, 1] @ mu[2, 2]), abs=1e-6)
  c = losses.cross_modal_similarities(jnp.asarray(gamma), jnp.asarray(alpha))
  assert c.shape == (3, 4, 4)  # N x T x T
  assert float(c[2, 0, 3]) == pytest.approx(float(gamma[2, 0] @ alpha[2, 3]), abs=1e-6)


def _numeric_grad(f, x, eps=1e-6):
  grad = np.zeros_like(x)
  for index in np.ndindex(x.shape):
    plus, minus = x.copy(), x.copy()
    plus[index] += eps
    minus[index] -= eps
    grad[index] = (f(plus) - f(minus)) / (2 * eps)
  return grad


def test_gradients_match_the_literal_equations():
  mu, gamma, alpha = _embeddings(6, 2, 3, 4), _embeddings(7, 2, 3, 4), _embeddings(8, 2, 3, 4)
  with jax.experimental.enable_x64():
    g_intra = jax.grad(lambda m: losses.intra_modal_loss(m, 0.2))(jnp.asarray(mu, jnp.float64))
    g_cross = jax.grad(lambda g: losses.cross_modal_loss(g, jnp.asarray(alpha), 0.2))(
        jnp.asarray(gamma, jnp.float64))
  np.testing.assert_allclose(np.asarray(g_intra), _numeric_grad(
      lambda m: _literal_intra(m, 0.2), mu), atol=1e-5)
  np.testing.assert_allclose(np.asarray(g_cross), _numeric_grad(
      lambda g: _literal_cross(g, alpha, 0.2), gamma), atol=1e-5)


def test_pmap_negatives_span_the_global_batch():
  """Two devices holding 2 identities each give exactly the single-device loss over all 4."""
  mu = _embeddings(9, n=4, t=3, d=6).astype(np.float32)
  expected = losses.intra_modal_loss(jnp.asarray(mu), 0.1)
  per_device = jax.pmap(lambda m: jax.lax.pmean(losses.intra_modal_loss(m, 0.1, axis_name="b"),
                                                "b"), axis_name="b")(mu.reshape(2, 2, 3, 6))
  np.testing.assert_allclose(np.asarray(per_device), [float(expected)] * 2, atol=1e-6)
  grads = jax.pmap(jax.grad(lambda m: losses.intra_modal_loss(m, 0.1, axis_name="b")),
                   axis_name="b")(mu.reshape(2, 2, 3, 6))
  # d(mean over devices)/d(mu): the all_gather transpose routes every device's share back.
  global_grad = jax.grad(lambda m: losses.intra_modal_loss(m, 0.1))(jnp.asarray(mu))
  np.testing.assert_allclose(np.asarray(grads).reshape(4, 3, 6) / 2, np.asarray(global_grad),
                             atol=1e-6)
