"""Batch norm with MMV's zero-debiased moving averages and cross-replica statistics.

The MMV checkpoints store, for every norm, two exponential moving averages (of the batch mean
and of the batch variance), each as ``{counter, hidden, average}``: ``hidden`` is the biased EMA
(decay 0.9, started at zero), ``average = hidden / (1 - decay**counter)`` its Adam-style
zero-debiased value, and evaluation normalises with ``average``. This module keeps the same
three entries so an original state maps onto ``batch_stats`` one to one, and a training step
advances them exactly as the original does.

In training the statistics are mean(x) and mean(x**2) over every axis but the channel axis,
averaged over the pmap axis ``axis_name`` when it is set (one all-reduce carrying both), and
var = mean(x**2) - mean(x)**2, as in the original. With ``axis_name=None`` the statistics are
local to the device.
"""
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

DEFAULT_DECAY = 0.9
DEFAULT_EPSILON = 1e-5


class ZeroDebiasedEMA(nn.Module):
  """Exponential moving average with zero-debiasing, stored in ``batch_stats``.

  Variables (``batch_stats``): ``counter`` int32 [], ``hidden`` and ``average`` float32 [C].
  """
  decay: float = DEFAULT_DECAY
  features: int = 0

  def setup(self):
    self.counter = self.variable("batch_stats", "counter", lambda: jnp.zeros((), jnp.int32))
    self.hidden = self.variable("batch_stats", "hidden",
                                lambda: jnp.zeros((self.features,), jnp.float32))
    self.average = self.variable("batch_stats", "average",
                                 lambda: jnp.zeros((self.features,), jnp.float32))

  def __call__(self, value: jax.Array) -> jax.Array:
    """Folds ``value`` [C] into the average and returns the new debiased average."""
    value = value.astype(jnp.float32)
    counter = self.counter.value + 1
    decay = jnp.asarray(self.decay, jnp.float32)
    one = jnp.ones((), jnp.float32)
    hidden = self.hidden.value * decay + value * (one - decay)
    average = hidden / (one - jnp.power(decay, counter))
    self.counter.value = counter
    self.hidden.value = hidden
    self.average.value = average
    return average


class CrossReplicaBatchNorm(nn.Module):
  """Batch norm over all axes but the last, with cross-replica statistics in training.

  Attributes:
    decay: decay of the moving averages (MMV: 0.9).
    epsilon: added to the variance (MMV: 1e-5).
    axis_name: pmap/shard_map axis to average the batch statistics over in training, or None
      for statistics local to each device.
    dtype: dtype of the output (the statistics are always computed in float32).

  Input [..., C] -> output [..., C]. Variables: ``params`` {scale [C], bias [C]};
  ``batch_stats`` {mean_ema, var_ema}, each {counter, hidden, average}.
  """
  decay: float = DEFAULT_DECAY
  epsilon: float = DEFAULT_EPSILON
  axis_name: Optional[str] = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    features = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (features,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (features,), jnp.float32)
    mean_ema = ZeroDebiasedEMA(self.decay, features, name="mean_ema")
    var_ema = ZeroDebiasedEMA(self.decay, features, name="var_ema")

    # Touching the averages creates them at init in either mode.
    moving_mean, moving_var = mean_ema.average.value, var_ema.average.value
    x32 = x.astype(jnp.float32)
    if train:
      axes = tuple(range(x.ndim - 1))
      moments = jnp.stack([jnp.mean(x32, axes), jnp.mean(jnp.square(x32), axes)])
      if self.axis_name is not None and not self.is_initializing():
        moments = jax.lax.pmean(moments, self.axis_name)
      mean, mean_of_squares = moments[0], moments[1]
      var = mean_of_squares - jnp.square(mean)
      if not self.is_initializing():
        mean_ema(mean)
        var_ema(var)
    else:
      mean, var = moving_mean, moving_var

    inv = scale * jax.lax.rsqrt(var + jnp.asarray(self.epsilon, jnp.float32))
    return ((x32 - mean) * inv + bias).astype(self.dtype)
