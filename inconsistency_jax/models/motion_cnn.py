"""A small temporal CNN that tells identities apart from facial motion alone (Table 1 study).

Input: motion clips [B, K, P * 3] (K frame-to-frame displacements of P 3-D landmarks, already
standardised); output: identity logits [B, num_classes]. Three 1-D convolutions over time with
layer norm and GELU, mean pooling over time, a linear classifier.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class MotionCNN(nn.Module):
  num_classes: int
  width: int = 128
  depth: int = 3
  kernel_size: int = 5
  dropout_rate: float = 0.2

  @nn.compact
  def __call__(self, clips, train: bool = False):
    if clips.ndim != 3:
      raise ValueError(f"MotionCNN expects clips [batch, time, features], got {clips.shape}")
    x = nn.Dense(self.width, name="input_projection")(clips)
    for index in range(self.depth):
      y = nn.Conv(self.width, (self.kernel_size,), padding="SAME", name=f"conv_{index}")(x)
      y = nn.LayerNorm(name=f"norm_{index}")(y)
      x = x + nn.gelu(y)
    x = jnp.mean(x, axis=1)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, name="classifier")(x)
