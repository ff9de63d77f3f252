"""Temporal transformer: one window of per-frame (or per-token) features -> one unit embedding.

Tian et al. aggregate the per-frame AdaFace features of a time window with a transformer
encoder into a unit-norm d-dim window embedding (the same for the visual network and, over
Whisper tokens, for the audio network). The paper gives no depth, width, heads or pooling; the
defaults live in ``configs/model.py`` with the reasons for each choice.

Layout: project the features to ``width``, prepend a learned [CLS] token, add learned positions,
pre-LN encoder blocks (self-attention, GELU MLP), final LayerNorm, the [CLS] output (or the
masked mean of the frames with ``pooling='mean'``), a linear map to ``embed_dim``, L2 norm.
"""
from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

_POOLINGS = ("cls", "mean")


class EncoderBlock(nn.Module):
  """Pre-LN transformer encoder block: [B, L, W] -> [B, L, W]."""
  num_heads: int
  mlp_dim: int
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, attention_mask, train: bool = False):
    y = nn.LayerNorm(dtype=self.dtype, name="attention_ln")(x)
    y = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, dtype=self.dtype,
                                        dropout_rate=self.dropout_rate,
                                        deterministic=not train, name="attention")(
                                            y, y, mask=attention_mask)
    x = x + nn.Dropout(self.dropout_rate, deterministic=not train)(y)
    y = nn.LayerNorm(dtype=self.dtype, name="mlp_ln")(x)
    y = nn.Dense(self.mlp_dim, dtype=self.dtype, name="mlp_fc1")(y)
    y = nn.gelu(y, approximate=False)
    y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
    y = nn.Dense(x.shape[-1], dtype=self.dtype, name="mlp_fc2")(y)
    return x + nn.Dropout(self.dropout_rate, deterministic=not train)(y)


class TemporalTransformer(nn.Module):
  """Window aggregator: features [B, L, C] (+ valid mask [B, L]) -> unit embedding [B, embed_dim].

  Attributes:
    embed_dim: d, the size of the window embedding shared by mu, gamma and alpha.
    width: transformer width W (features are projected from C to W first).
    depth: number of encoder blocks.
    num_heads: attention heads (W must be divisible by it).
    mlp_ratio: MLP hidden size = mlp_ratio * W.
    max_length: the longest window in frames/tokens the learned positions cover.
    dropout_rate: dropout in attention, MLP and residual branches (training only).
    pooling: 'cls' (learned [CLS] token) or 'mean' (masked mean of the outputs).
  """
  embed_dim: int
  width: int = 512
  depth: int = 2
  num_heads: int = 8
  mlp_ratio: int = 4
  max_length: int = 64
  dropout_rate: float = 0.1
  pooling: str = "cls"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, features, valid: Optional[jnp.ndarray] = None, train: bool = False):
    if self.pooling not in _POOLINGS:
      raise ValueError(f"pooling must be one of {_POOLINGS}, got {self.pooling!r}")
    if features.ndim != 3:
      raise ValueError(f"TemporalTransformer expects features [batch, length, channels], got "
                       f"{tuple(features.shape)}")
    batch, length, _ = features.shape
    if length > self.max_length:
      raise ValueError(f"window of {length} frames/tokens is longer than max_length="
                       f"{self.max_length}; raise max_length in the model config")
    if valid is None:
      valid = jnp.ones((batch, length), bool)
    valid = jnp.asarray(valid, bool)
    x = nn.Dense(self.width, dtype=self.dtype, name="input_projection")(features)
    if self.pooling == "cls":
      cls = self.param("cls_token", nn.initializers.zeros, (1, 1, self.width))
      x = jnp.concatenate([jnp.broadcast_to(cls, (batch, 1, self.width)).astype(x.dtype), x], 1)
      valid = jnp.concatenate([jnp.ones((batch, 1), bool), valid], axis=1)
    positions = self.param("position_embedding", nn.initializers.normal(stddev=0.02),
                           (self.max_length + 1, self.width))
    x = x + positions[:x.shape[1]].astype(x.dtype)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    attention_mask = nn.make_attention_mask(valid, valid)
    for index in range(self.depth):
      x = EncoderBlock(self.num_heads, self.mlp_ratio * self.width, self.dropout_rate,
                       dtype=self.dtype, name=f"block_{index}")(x, attention_mask, train)
    x = nn.LayerNorm(dtype=self.dtype, name="final_ln")(x)
    if self.pooling == "cls":
      pooled = x[:, 0]
    else:
      weights = valid.astype(x.dtype)[..., None]
      pooled = jnp.sum(x * weights, axis=1) / jnp.maximum(jnp.sum(weights, axis=1), 1.0)
    embedding = nn.Dense(self.embed_dim, dtype=self.dtype, name="output_projection")(pooled)
    return l2_normalize(embedding.astype(jnp.float32))


def l2_normalize(x, axis: int = -1, epsilon: float = 1e-12):
  """x / max(|x|, epsilon) along ``axis`` (unit vectors; zero stays zero)."""
  norm = jnp.linalg.norm(x, axis=axis, keepdims=True)
  return x / jnp.maximum(norm, epsilon)
