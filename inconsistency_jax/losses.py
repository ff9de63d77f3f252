"""The two training losses of Tian et al. (Eq. 2 intra-modal, Eq. 3 cross-modal), vectorised.

Notation of the paper: a batch holds N identities x T windows. mu_i(t) is the unit-norm identity
embedding of identity i's window t; gamma_i(t) and alpha_i(t) are the visual and audio embeddings
of the same window.

Eq. 2 (intra-modal). For every identity i and every pair of windows (t, q), the same identity at
window q is the positive and the other identities at window q are the negatives::

  L_intra = -1/(N T^2) sum_i sum_t sum_q log( exp(<mu_i(t), mu_i(q)>/tau)
                                              / sum_j exp(<mu_i(t), mu_j(q)>/tau) )

It is computed from the T x T x N x N tensor S[t, q, i, j] = <mu_i(t), mu_j(q)>.

Eq. 3 (cross-modal). For every identity i, window t's video should match window t's audio of the
same video better than any other window q of that audio, and symmetrically::

  L_cross = -1/(2 N T) sum_i sum_t [ log( exp(<gamma_i(t), alpha_i(t)>/tau')
                                          / sum_q exp(<gamma_i(t), alpha_i(q)>/tau') )
                                   + log( exp(<gamma_i(t), alpha_i(t)>/tau')
                                          / sum_q exp(<gamma_i(q), alpha_i(t)>/tau') ) ]

computed from the N x T x T tensor C[i, t, q] = <gamma_i(t), alpha_i(q)>.

Normalisers: the paper writes the sums without stating a normaliser; this code averages (1/(N T^2)
and 1/(2 N T)) so that the loss scale and the learning rate do not depend on N and T. The sums
include t = q in Eq. 2 as written (a window is its own easiest positive); ``exclude_same_window``
drops those terms.

Multi-device: with ``axis_name`` set (inside pmap), the negatives j of Eq. 2 span the GLOBAL
batch: every device all-gathers the identity embeddings and scores its own identities against all
of them. Eq. 3 only contrasts windows of the same video, so it needs no communication.
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp


def identity_similarities(mu: jnp.ndarray, mu_all: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """S[t, q, i, j] = <mu_i(t), mu_j(q)> for mu [N, T, d] (and the gathered mu_all [N', T, d])."""
  mu_all = mu if mu_all is None else mu_all
  return jnp.einsum("itd,jqd->tqij", mu, mu_all)


def intra_modal_loss(mu: jnp.ndarray, tau: float, *, axis_name: Optional[str] = None,
                     exclude_same_window: bool = False) -> jnp.ndarray:
  """Eq. 2 for unit-norm identity embeddings mu [N, T, d] -> scalar.

  With `axis_name`, mu is this device's [N_local, T, d] share; negatives come from all devices
  and the result is this device's mean (pmean it, as the gradients, for the global loss).
  """
  n_local, t = mu.shape[:2]
  if axis_name is None:
    mu_all, offset = mu, 0
  else:
    mu_all = jax.lax.all_gather(mu, axis_name, tiled=True)  # [N_global, T, d]
    offset = jax.lax.axis_index(axis_name) * n_local
  logits = identity_similarities(mu, mu_all) / tau  # [T, T, N_local, N_global]
  log_prob = jax.nn.log_softmax(logits, axis=-1)
  own = offset + jnp.arange(n_local)
  positives = jnp.take_along_axis(log_prob, own[None, None, :, None], axis=-1)[..., 0]  # [T,T,N]
  if exclude_same_window:
    weights = 1.0 - jnp.eye(t)[:, :, None]
    return -jnp.sum(positives * weights) / jnp.sum(weights * jnp.ones_like(positives))
  return -jnp.mean(positives)


def cross_modal_similarities(gamma: jnp.ndarray, alpha: jnp.ndarray) -> jnp.ndarray:
  """C[i, t, q] = <gamma_i(t), alpha_i(q)> for gamma, alpha [N, T, d]."""
  return jnp.einsum("itd,iqd->itq", gamma, alpha)


def cross_modal_loss(gamma: jnp.ndarray, alpha: jnp.ndarray, tau: float) -> jnp.ndarray:
  """Eq. 3 for unit-norm visual gamma and audio alpha embeddings [N, T, d] -> scalar."""
  logits = cross_modal_similarities(gamma, alpha) / tau  # [N, T, T]
  video_to_audio = jnp.diagonal(jax.nn.log_softmax(logits, axis=-1), axis1=1, axis2=2)
  audio_to_video = jnp.diagonal(jax.nn.log_softmax(logits, axis=-2), axis1=1, axis2=2)
  return -0.5 * (jnp.mean(video_to_audio) + jnp.mean(audio_to_video))
