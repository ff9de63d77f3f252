"""Whisper's audio encoder in Flax, parameter for parameter (openai-whisper ``AudioEncoder``).

The audio network alpha of the inconsistency detector starts from a pre-trained Whisper
encoder. Architecture (all sizes):

* stem: conv1d(n_mels -> d, kernel 3, pad 1) + GELU, conv1d(d -> d, kernel 3, stride 2, pad 1)
  + GELU, so 3000 mel frames (30 s) become 1500 tokens of 20 ms;
* plus a sinusoidal position table [1500, d] (``[sin | cos]``, increment log(10000)/(d/2 - 1));
  it is stored in the checkpoints, and loaded from them, as ``positional_embedding``;
* pre-LN transformer blocks: LN -> self-attention (key projection without bias, q and k each
  scaled by (d / heads) ** -0.25) -> residual; LN -> MLP 4d with exact GELU -> residual;
* a final LayerNorm (``ln_post``). All LayerNorms use epsilon 1e-5.

Context length, a trade-off. Whisper was trained only on 30-s inputs (zero-padded after the
speech), and the reference asserts 3000 frames. ``allow_shorter_context=False`` keeps that
rule: feed ``log_mel_spectrogram(pad_or_trim(window))`` and pool over the tokens that cover the
window; the features are those of the pre-trained model, but every window costs a full 30-s
pass. ``allow_shorter_context=True`` accepts any length up to 30 s and adds only the first
``frames // 2`` rows of the position table (the rows a padded input would use for those
tokens): compute shrinks with the window (at least 30x for 1-s windows, the attention part
quadratically), but the tokens no longer attend to the padded tail, so the features differ from
those of the pre-trained model on the padded input, a shift of input distribution the
pre-trained weights never saw. The detector fine-tunes every layer, which can absorb that shift,
so the model config defaults to short contexts and documents it.

The position table is a parameter so that checkpoints load bit for bit; Whisper never trains it,
and :func:`inconsistency_jax.models.detector.trainable_mask` marks it frozen for the optimiser.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# Encoder tokens in Whisper's 30-s window (3000 mel frames after the stride-2 convolution).
AUDIO_CONTEXT = 1500


class WhisperDims(NamedTuple):
  n_mels: int
  width: int
  num_heads: int
  num_layers: int


# Encoder sizes of the released models (openai-whisper ModelDimensions).
WHISPER_SIZES = {
    "tiny": WhisperDims(80, 384, 6, 4),
    "base": WhisperDims(80, 512, 8, 6),
    "small": WhisperDims(80, 768, 12, 12),
    "medium": WhisperDims(80, 1024, 16, 24),
    "large": WhisperDims(80, 1280, 20, 32),
    "large-v2": WhisperDims(80, 1280, 20, 32),
    "large-v3": WhisperDims(128, 1280, 20, 32),
    "large-v3-turbo": WhisperDims(128, 1280, 20, 32),
}


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> np.ndarray:
  """Whisper's sinusoidal position table, [length, channels] float32, [sin | cos] halves."""
  if channels % 2:
    raise ValueError(f"the position table needs an even width, got {channels}")
  # Float64, then rounded once: the released tables are openai-whisper's float32 computation,
  # which differs from the exact values by up to 1e-4 at late positions; checkpoints carry their
  # own table, so this one only seeds models trained from scratch.
  increment = np.log(max_timescale) / (channels // 2 - 1)
  inv_timescales = np.exp(-increment * np.arange(channels // 2, dtype=np.float64))
  scaled_time = np.arange(length, dtype=np.float64)[:, None] * inv_timescales[None, :]
  return np.concatenate([np.sin(scaled_time), np.cos(scaled_time)], axis=1).astype(np.float32)


class MultiHeadAttention(nn.Module):
  """Whisper's self-attention: [B, T, d] -> [B, T, d]."""
  num_heads: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    batch, length, width = x.shape
    if width % self.num_heads:
      raise ValueError(f"width {width} is not divisible by num_heads {self.num_heads}")
    head_dim = width // self.num_heads
    dense = lambda name, bias=True: nn.Dense(width, use_bias=bias, dtype=self.dtype, name=name)
    split = lambda y: y.reshape(batch, length, self.num_heads, head_dim)
    scale = head_dim ** -0.25
    q = split(dense("query")(x)) * scale
    k = split(dense("key", bias=False)(x)) * scale
    v = split(dense("value")(x))
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(batch, length, width)
    return dense("out")(out)


class ResidualAttentionBlock(nn.Module):
  """Pre-LN transformer block of the Whisper encoder: [B, T, d] -> [B, T, d]."""
  num_heads: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    width = x.shape[-1]
    layer_norm = lambda name: nn.LayerNorm(epsilon=1e-5, use_fast_variance=False,
                                           dtype=self.dtype, name=name)
    x = x + MultiHeadAttention(self.num_heads, dtype=self.dtype, name="attn")(
        layer_norm("attn_ln")(x))
    y = layer_norm("mlp_ln")(x)
    y = nn.Dense(4 * width, dtype=self.dtype, name="mlp_fc1")(y)
    y = nn.gelu(y, approximate=False)
    y = nn.Dense(width, dtype=self.dtype, name="mlp_fc2")(y)
    return x + y


class WhisperEncoder(nn.Module):
  """Whisper audio encoder: log-mel [B, frames, n_mels] -> tokens [B, frames // 2, width].

  Attributes:
    n_mels, width, num_heads, num_layers: the model size (see ``WHISPER_SIZES``).
    context: tokens of the full window and rows of the position table (1500 = 30 s).
    allow_shorter_context: accept fewer than ``2 * context`` frames by slicing the position
      table (see the module docstring for the trade-off); otherwise exactly 30 s is required.
  """
  n_mels: int = 80
  width: int = 384
  num_heads: int = 6
  num_layers: int = 4
  context: int = AUDIO_CONTEXT
  allow_shorter_context: bool = False
  dtype: Any = jnp.float32

  @classmethod
  def from_size(cls, size: str, **kwargs) -> "WhisperEncoder":
    if size not in WHISPER_SIZES:
      raise ValueError(f"Whisper size must be one of {sorted(WHISPER_SIZES)}, got {size!r}")
    return cls(**WHISPER_SIZES[size]._asdict(), **kwargs)

  @nn.compact
  def __call__(self, mel, train: bool = False):
    del train  # Whisper's encoder has no dropout or batch statistics.
    if mel.ndim != 3 or mel.shape[-1] != self.n_mels:
      raise ValueError(f"WhisperEncoder expects log-mel features [batch, frames, {self.n_mels}] "
                       f"(audio_features.log_mel_spectrogram), got {tuple(mel.shape)}")
    frames = mel.shape[1]
    full = 2 * self.context
    if frames > full or (frames != full and not self.allow_shorter_context):
      raise ValueError(
          f"Whisper's encoder takes {full} mel frames ({full // 100} s at 16 kHz), got {frames}. "
          "Pad the waveform with audio_features.pad_or_trim, or build the encoder with "
          "allow_shorter_context=True to run windows of up to that length.")
    if frames % 2:
      raise ValueError(f"the number of mel frames must be even (stride-2 stem), got {frames}")
    conv = lambda name, stride: nn.Conv(self.width, (3,), strides=(stride,),
                                        padding=((1, 1),), dtype=self.dtype, name=name)
    x = nn.gelu(conv("conv1", 1)(jnp.asarray(mel, self.dtype)), approximate=False)
    x = nn.gelu(conv("conv2", 2)(x), approximate=False)
    positions = self.param("positional_embedding",
                           lambda *_: jnp.asarray(sinusoids(self.context, self.width)))
    x = x + positions[:x.shape[1]].astype(self.dtype)
    for index in range(self.num_layers):
      x = ResidualAttentionBlock(self.num_heads, dtype=self.dtype, name=f"blocks_{index}")(x)
    return nn.LayerNorm(epsilon=1e-5, use_fast_variance=False, dtype=self.dtype,
                        name="ln_post")(x)
