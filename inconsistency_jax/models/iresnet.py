"""AdaFace's IResNet (IR-18/34/50/101) face-recognition backbone in Flax.

The identity network mu and the visual network gamma of the inconsistency detector start from a
pre-trained AdaFace model. This is AdaFace's ``net.Backbone`` in ``ir`` mode at 112x112 input,
layer for layer, so that its released weights load unchanged (see ``checkpoints.py``):

* stem: conv3x3(3->64) without bias, BatchNorm, PReLU (one slope per channel);
* four stages of ``BasicBlockIR`` units with 64/128/256/512 channels, the first unit of every
  stage having stride 2; a unit is BN, conv3x3, BN, PReLU, conv3x3 (with the stride), BN, added
  to a shortcut that is a stride-``s`` subsampling when the channel count does not change
  (MaxPool2d(1, s)) and conv1x1(stride s) + BN when it does;
* head: BN2d, Dropout(0.4), flatten in PyTorch's (C, H, W) order, Dense(512*7*7 -> 512),
  BN1d without scale and bias;
* output: the unit embedding x / |x| and its norm |x| (AdaFace's feature-quality proxy).

Input: ``[batch, 112, 112, 3]`` faces aligned to the ArcFace five-point template, in BGR order
and scaled to [-1, 1]: AdaFace was trained on BGR images, unlike InsightFace's RGB models. The
data layer delivers RGB, and :func:`preprocess_faces` is the one place where the channels are
flipped to BGR and the pixels normalised.

Batch norm follows PyTorch: epsilon 1e-5, running averages with momentum 0.1 (Flax's 0.9), and
statistics averaged across devices when ``bn_axis_name`` names the pmap axis (e.g. 'batch').
In training mode PyTorch updates the running variance with the unbiased batch variance and
Flax with the biased one; the difference (a factor n/(n-1)) matters only for tiny batches.
"""
from __future__ import annotations

import functools
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from data import constants

# Units per stage (AdaFace ``get_blocks``); the depth 100 of AdaFace's code is called IR-101.
UNITS_PER_STAGE = {
    "ir_18": (2, 2, 2, 2),
    "ir_34": (3, 4, 6, 3),
    "ir_50": (3, 4, 14, 3),
    "ir_101": (3, 13, 30, 3),
}
STAGE_WIDTHS = (64, 128, 256, 512)
STEM_WIDTH = 64
EMBEDDING_DIM = 512


def preprocess_faces(faces_rgb) -> jnp.ndarray:
  """RGB faces in [0, 255] -> AdaFace's input: BGR, ((x / 255) - 0.5) / 0.5, float32.

  This is where the channel order flips from the data layer's RGB to AdaFace's BGR.

  Args:
    faces_rgb: [..., H, W, 3] uint8 or float RGB pixels in [0, 255].
  Returns:
    [..., H, W, 3] float32 BGR pixels in [-1, 1].
  """
  faces = jnp.asarray(faces_rgb, jnp.float32)[..., ::-1]
  return (faces / 255.0 - 0.5) / 0.5


class PReLU(nn.Module):
  """PReLU with one learned slope per channel (PyTorch ``nn.PReLU(num_parameters=C)``)."""
  init_slope: float = 0.25

  @nn.compact
  def __call__(self, x):
    slope = self.param("negative_slope", nn.initializers.constant(self.init_slope),
                       (x.shape[-1],))
    return jnp.where(x >= 0, x, slope.astype(x.dtype) * x)


class BasicBlockIR(nn.Module):
  """AdaFace's ``BasicBlockIR``: [B, H, W, Cin] -> [B, H / stride, W / stride, width]."""
  width: int
  stride: int
  bn_axis_name: Optional[str] = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                             epsilon=1e-5, axis_name=self.bn_axis_name, dtype=self.dtype,
                             use_fast_variance=False)
    conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype)
    s = self.stride
    if x.shape[-1] == self.width:
      shortcut = x[:, ::s, ::s, :]  # MaxPool2d(kernel 1, stride s) is a subsampling.
    else:
      shortcut = conv(self.width, (1, 1), strides=(s, s), padding="VALID",
                      name="shortcut_conv")(x)
      shortcut = norm(name="shortcut_bn")(shortcut)
    y = norm(name="bn1")(x)
    y = conv(self.width, (3, 3), padding=((1, 1), (1, 1)), name="conv1")(y)
    y = norm(name="bn2")(y)
    y = PReLU(name="prelu")(y)
    y = conv(self.width, (3, 3), strides=(s, s), padding=((1, 1), (1, 1)), name="conv2")(y)
    y = norm(name="bn3")(y)
    return y + shortcut


class IResNet(nn.Module):
  """AdaFace IResNet: preprocessed faces [B, 112, 112, 3] -> (unit embedding [B, E], norm [B, 1]).

  Attributes:
    arch: 'ir_18', 'ir_34', 'ir_50' or 'ir_101'.
    stage_widths: channels per stage; AdaFace's (64, 128, 256, 512). Smaller values only for
      tests and CPU demos.
    stem_width: channels of the stem convolution (64 in AdaFace).
    embedding_dim: size of the identity feature (512 in AdaFace).
    dropout_rate: dropout of the head (0.4 in AdaFace).
    input_size: face side in pixels; AdaFace's 112 (data.constants.IDENTITY_FACE_SIZE).
    bn_axis_name: pmap axis over which batch-norm statistics are averaged in training (None: per
      device). Training code that runs under ``jax.pmap(axis_name='batch')`` sets 'batch'.
  """
  arch: str = "ir_101"
  stage_widths: Sequence[int] = STAGE_WIDTHS
  stem_width: int = STEM_WIDTH
  embedding_dim: int = EMBEDDING_DIM
  dropout_rate: float = 0.4
  input_size: int = constants.IDENTITY_FACE_SIZE
  bn_axis_name: Optional[str] = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, faces, train: bool = False):
    if self.arch not in UNITS_PER_STAGE:
      raise ValueError(f"IResNet arch must be one of {sorted(UNITS_PER_STAGE)}, got "
                       f"{self.arch!r}")
    expected = (self.input_size, self.input_size, 3)
    if faces.ndim != 4 or tuple(faces.shape[1:]) != expected:
      raise ValueError(
          f"IResNet expects aligned faces of shape [batch, {self.input_size}, "
          f"{self.input_size}, 3] (BGR, see preprocess_faces), got {tuple(faces.shape)}; align "
          f"faces to the {self.input_size}x{self.input_size} ArcFace template first.")
    norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                             epsilon=1e-5, axis_name=self.bn_axis_name, dtype=self.dtype,
                             use_fast_variance=False)
    x = jnp.asarray(faces, self.dtype)
    x = nn.Conv(self.stem_width, (3, 3), padding=((1, 1), (1, 1)), use_bias=False,
                dtype=self.dtype, name="stem_conv")(x)
    x = norm(name="stem_bn")(x)
    x = PReLU(name="stem_prelu")(x)
    index = 0
    for width, units in zip(self.stage_widths, UNITS_PER_STAGE[self.arch]):
      for unit in range(units):
        x = BasicBlockIR(width, stride=2 if unit == 0 else 1, bn_axis_name=self.bn_axis_name,
                         dtype=self.dtype, name=f"body_{index}")(x, train)
        index += 1
    x = norm(name="head_bn")(x)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    # PyTorch flattens NCHW, so the Dense kernel rows are ordered (C, H, W).
    x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)
    x = nn.Dense(self.embedding_dim, dtype=self.dtype, name="head_dense")(x)
    x = norm(use_scale=False, use_bias=False, name="head_bn_out")(x)
    x = x.astype(jnp.float32)
    feature_norm = jnp.linalg.norm(x, axis=-1, keepdims=True)
    return x / feature_norm, feature_norm
