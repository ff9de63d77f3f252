"""FakeOut (Knafo & Fried): the MMV backbone with a small real/fake classifier on top.

V&A mode classifies concat(vid_repr, aud_repr); V mode classifies vid_repr alone. The released
classifier is three Linear layers (D -> 512 -> 128 -> 2) with NO activation between them, so it
is an affine map; the paper calls it "an MLP with 2 hidden layers". ``head_activation='relu'``
gives the paper's reading; the default reproduces the released checkpoint.
"""
from typing import Any, Dict, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from fakeout_jax.models import audio_resnet
from fakeout_jax.models import batch_norm
from fakeout_jax.models import mmv_heads
from fakeout_jax.models import tsm_resnet

MODALITIES = ("video_audio", "video")
HEAD_ACTIVATIONS = (None, "relu")
HEAD_HIDDEN = (512, 128)
NUM_CLASSES = 2
HEAD_INIT_STDDEV = 0.02
# Shape of the throw-away audio input that creates the audio tower's variables at init in V mode.
_INIT_AUDIO_SHAPE = (32, 32, 1)


class FakeOutHead(nn.Module):
  """The FakeOut classifier: Dense layers hidden... -> num_classes.

  [B, D] -> logits [B, num_classes] float32. Submodules dense_0, dense_1, dense_2 (truncated
  normal 0.02 kernels, zero biases). ``activation`` None (released code) or 'relu' (paper).
  """
  hidden_features: Sequence[int] = HEAD_HIDDEN
  num_classes: int = NUM_CLASSES
  activation: Optional[str] = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.activation not in HEAD_ACTIVATIONS:
      raise ValueError(f"head activation must be one of {HEAD_ACTIVATIONS}, "
                       f"got {self.activation!r}")
    init = nn.initializers.truncated_normal(HEAD_INIT_STDDEV)
    sizes = tuple(self.hidden_features) + (self.num_classes,)
    for index, size in enumerate(sizes):
      x = nn.Dense(size, kernel_init=init, dtype=self.dtype, name=f"dense_{index}")(x)
      if self.activation == "relu" and index < len(sizes) - 1:
        x = nn.relu(x)
    return x.astype(jnp.float32)


class FakeOut(nn.Module):
  """MMV (TSM-ResNetV2-50 x width_mult video, ResNetV2-50 audio, fac_relu heads) + classifier.

  Call: ``model.apply(variables, video, audio, train=False)``; in training pass
  ``mutable=['batch_stats']``. Inputs: video [B, T, H, W, 3] in [0, 1] (FakeOut: T=32,
  224x224); audio log-mel [B, time, mel, 1] (FakeOut: [B, 183, 80, 1]), required in
  'video_audio' mode and ignored in 'video' mode; word_ids [B, N] int only with ``use_text``.

  Returns a dict: logits [B, 2]; vid_repr [B, 2048 * width_mult]; aud_repr [B, 2048]
  ('video_audio'); with ``compute_embeddings`` the joint-space embeddings vid_embd, aud_embd
  (and txt_embd with text), see mmv_heads.MMVHeads.

  Every submodule's variables exist after init whatever the mode, so an MMV or FakeOut
  checkpoint always maps completely; 'video' mode just does not run the audio tower.

  Attributes:
    width_mult: 1 (MMV TSM-ResNet50) or 2 (TSM-ResNet50x2, FakeOut's released model).
    blocks_per_unit, audio_width_mult, audio_blocks_per_unit: the released models use
      (3, 4, 6, 3), 1, (3, 4, 6, 3); smaller values only serve CPU demos and tests.
    modality: 'video_audio' (V&A) or 'video' (V).
    head_activation: None (released code: affine head) or 'relu' (paper).
    compute_embeddings: also return MMV's joint-space embeddings (cheap; off for pure
      classification training if the heads' batch statistics should stay untouched).
    use_text: build MMV's text branch (only to reproduce MMV itself; FakeOut never uses it).
    axis_name: pmap axis for cross-replica batch statistics in training (None: local).
    dtype: computation dtype (parameters and batch statistics stay float32).
  """
  width_mult: float = 2
  blocks_per_unit: Sequence[int] = tsm_resnet.BLOCKS_PER_UNIT
  audio_width_mult: float = 1
  audio_blocks_per_unit: Sequence[int] = tsm_resnet.BLOCKS_PER_UNIT
  modality: str = "video_audio"
  head_activation: Optional[str] = None
  head_hidden: Sequence[int] = HEAD_HIDDEN
  num_classes: int = NUM_CLASSES
  compute_embeddings: bool = True
  use_text: bool = False
  shift_fraction: float = tsm_resnet.CHANNEL_SHIFT_FRACTION
  bn_decay: float = batch_norm.DEFAULT_DECAY
  bn_epsilon: float = batch_norm.DEFAULT_EPSILON
  axis_name: Optional[str] = None
  dtype: Any = jnp.float32

  def _check_inputs(self, video, audio, word_ids):
    if self.modality not in MODALITIES:
      raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
    video_shape = tuple(getattr(video, "shape", ()))
    if len(video_shape) != 5 or video_shape[-1] != 3 or min(video_shape) < 1:
      raise ValueError(
          "FakeOut expects video of shape [B, T, H, W, 3] (released model: [B, 32, 224, 224, 3],"
          f" float in [0, 1]); got {video_shape}")
    batch = video_shape[0]
    if self.modality == "video_audio":
      if audio is None:
        raise ValueError(
            "FakeOut in 'video_audio' mode needs audio: a log-mel spectrogram of shape "
            f"[B, time, mel, 1] (released model: [B, {audio_resnet.AUDIO_FRAMES}, "
            f"{audio_resnet.MEL_BINS}, 1]); use modality='video' for video only")
      audio_shape = tuple(audio.shape)
      if len(audio_shape) != 4 or audio_shape[-1] != 1 or audio_shape[0] != batch:
        raise ValueError(
            f"FakeOut expects audio of shape [B, time, mel, 1] with B = {batch} as in the video "
            f"(released model: [B, {audio_resnet.AUDIO_FRAMES}, {audio_resnet.MEL_BINS}, 1]); "
            f"got {audio_shape} with video {video_shape}")
    if self.use_text:
      if word_ids is None or word_ids.ndim != 2 or word_ids.shape[0] != batch:
        raise ValueError(
            f"FakeOut with use_text expects word_ids of shape [B, N] with B = {batch}; got "
            f"{None if word_ids is None else tuple(word_ids.shape)}")

  @nn.compact
  def __call__(self, video: jax.Array, audio: Optional[jax.Array] = None,
               word_ids: Optional[jax.Array] = None, *, train: bool) -> Dict[str, Any]:
    self._check_inputs(video, audio, word_ids)
    common = dict(bn_decay=self.bn_decay, bn_epsilon=self.bn_epsilon, axis_name=self.axis_name,
                  dtype=self.dtype)
    initializing = self.is_initializing()
    use_audio = self.modality == "video_audio"

    outputs = {}
    vid_repr = tsm_resnet.TSMResNetV2(self.width_mult, self.blocks_per_unit,
                                      shift_fraction=self.shift_fraction,
                                      name="video_encoder", **common)(video, train)
    outputs["vid_repr"] = vid_repr

    audio_encoder = audio_resnet.AudioResNetV2(
        width_mult=self.audio_width_mult, blocks_per_unit=self.audio_blocks_per_unit,
        name="audio_encoder", **common)
    aud_repr = None
    if use_audio:
      aud_repr = audio_encoder(audio, train)
      outputs["aud_repr"] = aud_repr
    elif initializing:
      audio_encoder(jnp.zeros((video.shape[0],) + _INIT_AUDIO_SHAPE, jnp.float32), train)

    txt_repr = None
    if self.use_text:
      txt_repr = mmv_heads.TextEncoder(dtype=self.dtype, name="text_encoder")(word_ids)

    heads = mmv_heads.MMVHeads(name="embedding_heads", **common)
    if self.compute_embeddings or initializing:
      head_audio = aud_repr
      if head_audio is None and initializing:
        head_audio = jnp.zeros((video.shape[0], tsm_resnet.scaled(
            tsm_resnet.UNIT_CHANNELS[-1], self.audio_width_mult)), jnp.float32)
      embeddings = heads(vid_repr, head_audio, txt_repr, train=train)
      if self.compute_embeddings:
        if not use_audio:
          embeddings.pop("aud_embd", None)
        outputs.update(embeddings)

    features = jnp.concatenate([vid_repr, aud_repr], axis=1) if use_audio else vid_repr
    outputs["logits"] = FakeOutHead(self.head_hidden, self.num_classes, self.head_activation,
                                    dtype=self.dtype, name="classifier")(features)
    return outputs
