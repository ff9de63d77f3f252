"""MMV's audio backbone: ResNetV2-50 on a log-mel spectrogram seen as a one-channel image.

The same pre-activation trunk as the video backbone (tsm_resnet.py) with width 1 and no
temporal shift; the spectrogram's time axis is the image height and its mel axis the width.
"""
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from fakeout_jax.models import batch_norm
from fakeout_jax.models import tsm_resnet

# MMV/FakeOut audio input: 183 STFT frames (48662 samples at 44.1 kHz, frame 2048, hop 256) of
# 80 mel bins.
# TODO(data/constants.py): take these from the shared constants once the audio front end lands.
AUDIO_FRAMES = 183
MEL_BINS = 80


class AudioResNetV2(nn.Module):
  """ResNetV2-50 audio encoder.

  Input: log-mel spectrogram [B, T, F, 1] (MMV/FakeOut: [B, 183, 80, 1], dB).
  Output: aud_repr [B, 2048] float32 (spatial mean of the last feature map).
  `width_mult` and `blocks_per_unit` only serve small CPU configurations (MMV: 1, (3, 4, 6, 3)).
  """
  width_mult: float = 1
  blocks_per_unit: Sequence[int] = tsm_resnet.BLOCKS_PER_UNIT
  bn_decay: float = batch_norm.DEFAULT_DECAY
  bn_epsilon: float = batch_norm.DEFAULT_EPSILON
  axis_name: Optional[str] = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, spectrogram: jax.Array, train: bool) -> jax.Array:
    if spectrogram.ndim != 4 or spectrogram.shape[-1] != 1:
      raise ValueError(
          f"AudioResNetV2 expects a log-mel spectrogram of shape [B, time, mel, 1] (MMV/FakeOut: "
          f"[B, {AUDIO_FRAMES}, {MEL_BINS}, 1]); got {tuple(spectrogram.shape)}")
    features = tsm_resnet.resnet_v2_trunk(
        spectrogram, train, width_mult=self.width_mult, num_frames=None, shift_fraction=0.0,
        bn_decay=self.bn_decay, bn_epsilon=self.bn_epsilon, axis_name=self.axis_name,
        dtype=self.dtype, blocks_per_unit=self.blocks_per_unit)
    return jnp.mean(features.astype(jnp.float32), axis=(1, 2))
