"""TSM-ResNetV2-50: MMV's video backbone (pre-activation ResNet-50 with temporal shifts).

Lin et al., "TSM: Temporal Shift Module", on the ResNetV2 of He et al., as MMV (Alayrac et al.)
trains it and FakeOut fine-tunes it. The pre-activation bottleneck and the ResNet-50 trunk here
are shared with the audio backbone (audio_resnet.py), which is the same network without shifts.

Facts that differ from textbook TSM / ResNet (all reproduced):
* the stem is a 7x7/2 convolution (64 * width_mult channels) and a 3x3/2 max-pool, with no
  norm or ReLU after it (pre-activation network); the trunk ends with norm + ReLU;
* the shift sits in every block, on the pre-activated residual branch, AFTER the projection
  shortcut has been taken from the same pre-activation;
* the shifted channel layout: with n = int(C * 0.125), output channels [0, n) hold the LAST n
  channels of the next frame, [n, C - n) are unshifted and [C - n, C) hold the FIRST n
  channels of the previous frame (zeros at the clip ends). Textbook TSM keeps the groups in
  place; the pretrained weights expect this permutation;
* frames are folded batch-major ([B, T] -> [B * T]) and the embedding is the spatial mean then
  the temporal mean.
"""
import functools
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from fakeout_jax.models import batch_norm

BLOCKS_PER_UNIT = (3, 4, 6, 3)
UNIT_CHANNELS = (256, 512, 1024, 2048)
UNIT_STRIDES = (1, 2, 2, 2)
STEM_CHANNELS = 64
CHANNEL_SHIFT_FRACTION = 0.125


def temporal_shift(x: jax.Array, num_frames: int,
                   fraction: float = CHANNEL_SHIFT_FRACTION) -> jax.Array:
  """Shifts channel groups one frame along time, with the original MMV channel layout.

  Args:
    x: [B * T, H, W, C] frames folded batch-major.
    num_frames: T.
    fraction: share of channels moved in each direction (n = int(C * fraction)).

  Returns:
    [B * T, H, W, C]: channels [0, n) = x[t + 1][..., C - n:], [n, C - n) = x[t][..., n:C - n],
    [C - n, C) = x[t - 1][..., :n], zero where t + 1 or t - 1 falls outside the clip.
  """
  folded, height, width, channels = x.shape
  n = int(channels * fraction)
  if n == 0:
    return x
  clips = x.reshape(folded // num_frames, num_frames, height, width, channels)
  # Slices, pads and one concatenate: XLA emits a single fused loop for the whole shift.
  time_pad_end = ((0, 0), (0, 1), (0, 0), (0, 0), (0, 0))
  time_pad_start = ((0, 0), (1, 0), (0, 0), (0, 0), (0, 0))
  from_next = jnp.pad(clips[:, 1:, :, :, channels - n:], time_pad_end)
  from_previous = jnp.pad(clips[:, :-1, :, :, :n], time_pad_start)
  shifted = jnp.concatenate([from_next, clips[..., n:channels - n], from_previous], axis=-1)
  return shifted.reshape(folded, height, width, channels)


class PreActBottleneck(nn.Module):
  """Pre-activation bottleneck block, optionally with a temporal shift on the residual branch.

  [N, H, W, C_in] -> [N, H / stride, W / stride, features]. Submodules: norm_0 (on the block
  input), conv_0 1x1, norm_1, conv_1 3x3/stride, norm_2, conv_2 1x1, and shortcut_conv 1x1/stride
  when ``use_projection``.
  """
  features: int
  strides: int = 1
  use_projection: bool = False
  num_frames: Optional[int] = None  # None: no temporal shift (audio).
  shift_fraction: float = CHANNEL_SHIFT_FRACTION
  norm: Any = batch_norm.CrossReplicaBatchNorm
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    conv = functools.partial(nn.Conv, use_bias=False, padding="SAME", dtype=self.dtype,
                             param_dtype=jnp.float32)
    bottleneck = self.features // 4
    strides = (self.strides, self.strides)

    preact = nn.relu(self.norm(name="norm_0")(x, train))
    shortcut = x
    if self.use_projection:
      shortcut = conv(self.features, (1, 1), strides, name="shortcut_conv")(preact)
    if self.num_frames is not None and self.shift_fraction > 0:
      preact = temporal_shift(preact, self.num_frames, self.shift_fraction)

    residual = conv(bottleneck, (1, 1), name="conv_0")(preact)
    residual = nn.relu(self.norm(name="norm_1")(residual, train))
    residual = conv(bottleneck, (3, 3), strides, name="conv_1")(residual)
    residual = nn.relu(self.norm(name="norm_2")(residual, train))
    residual = conv(self.features, (1, 1), name="conv_2")(residual)
    return shortcut + residual


class ResNetUnit(nn.Module):
  """A group of bottleneck blocks; the first one strides and projects its shortcut."""
  features: int
  num_blocks: int
  strides: int
  num_frames: Optional[int] = None
  shift_fraction: float = CHANNEL_SHIFT_FRACTION
  norm: Any = batch_norm.CrossReplicaBatchNorm
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    # Block 0 always changes the channel count in a ResNet-50, so it always projects (the
    # original audio network projects "if channels change", the video one "in block 0").
    for index in range(self.num_blocks):
      x = PreActBottleneck(
          self.features, strides=self.strides if index == 0 else 1, use_projection=index == 0,
          num_frames=self.num_frames, shift_fraction=self.shift_fraction, norm=self.norm,
          dtype=self.dtype, name=f"block_{index}")(x, train)
    return x


def scaled(channels: int, width_mult: float) -> int:
  """Channels of a layer at a width multiplier (1 and 2 for the released models; fractions give
  the small CPU configurations)."""
  return max(1, int(round(channels * width_mult)))


def resnet_v2_trunk(x: jax.Array, train: bool, *, width_mult: float, num_frames: Optional[int],
                    shift_fraction: float, bn_decay: float, bn_epsilon: float,
                    axis_name: Optional[str], dtype: Any,
                    blocks_per_unit: Sequence[int] = BLOCKS_PER_UNIT) -> jax.Array:
  """Stem, four units and the final norm + ReLU of a ResNetV2-50, without pooling.

  Call it from a compact method: its submodules (stem_conv, unit_0..unit_3, final_norm) belong
  to the calling module, so both backbones keep a flat, readable parameter tree.

  [N, H, W, C_in] -> [N, ceil(H / 32), ceil(W / 32), 2048 * width_mult]. ``num_frames`` turns
  on the temporal shift in every block (frames folded batch-major in N).
  """
  norm = functools.partial(batch_norm.CrossReplicaBatchNorm, decay=bn_decay, epsilon=bn_epsilon,
                           axis_name=axis_name, dtype=dtype)
  x = nn.Conv(scaled(STEM_CHANNELS, width_mult), (7, 7), (2, 2), padding="SAME", use_bias=False,
              dtype=dtype, param_dtype=jnp.float32, name="stem_conv")(x.astype(dtype))
  x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
  for unit, (channels, num_blocks, strides) in enumerate(
      zip(UNIT_CHANNELS, blocks_per_unit, UNIT_STRIDES)):
    x = ResNetUnit(scaled(channels, width_mult), num_blocks, strides, num_frames=num_frames,
                   shift_fraction=shift_fraction, norm=norm, dtype=dtype,
                   name=f"unit_{unit}")(x, train)
  return nn.relu(norm(name="final_norm")(x, train))


class TSMResNetV2(nn.Module):
  """MMV's video backbone: TSM-ResNetV2-50, width multiplier 1 or 2.

  Input: video [B, T, H, W, 3] float (MMV/FakeOut: [B, 32, 224, 224, 3] in [0, 1]).
  Output: vid_repr [B, 2048 * width_mult] float32.
  `blocks_per_unit` and a fractional `width_mult` only serve small CPU configurations.
  """
  width_mult: float = 1
  blocks_per_unit: Sequence[int] = BLOCKS_PER_UNIT
  shift_fraction: float = CHANNEL_SHIFT_FRACTION
  bn_decay: float = batch_norm.DEFAULT_DECAY
  bn_epsilon: float = batch_norm.DEFAULT_EPSILON
  axis_name: Optional[str] = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, video: jax.Array, train: bool) -> jax.Array:
    if video.ndim != 5 or video.shape[-1] != 3:
      raise ValueError(
          f"TSMResNetV2 expects video of shape [B, T, H, W, 3] (MMV/FakeOut: [B, 32, 224, 224, "
          f"3], values in [0, 1]); got {tuple(video.shape)}")
    batch, frames = video.shape[:2]
    folded = video.reshape((batch * frames,) + video.shape[2:])
    features = resnet_v2_trunk(
        folded, train, width_mult=self.width_mult, num_frames=frames,
        shift_fraction=self.shift_fraction, bn_decay=self.bn_decay, bn_epsilon=self.bn_epsilon,
        axis_name=self.axis_name, dtype=self.dtype, blocks_per_unit=self.blocks_per_unit)
    per_frame = jnp.mean(features.astype(jnp.float32), axis=(1, 2))
    return jnp.mean(per_frame.reshape(batch, frames, -1), axis=1)
