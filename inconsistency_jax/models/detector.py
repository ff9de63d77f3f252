"""The three networks of Tian et al.'s inconsistency detector, built from the parts.

* identity network mu:  per-frame AdaFace IResNet features -> temporal transformer -> unit d-dim
  window embedding (``identity_encoder``);
* visual network gamma: the same architecture with its own weights (``visual_encoder``);
* audio network alpha:  Whisper encoder tokens -> temporal transformer (or mean pooling and a
  linear map) -> unit d-dim window embedding (``audio_encoder``).

mu is compared with itself over the windows of a video (intra-modal consistency), gamma with
alpha (cross-modal consistency); all layers are trained. Hyper-parameters come from
``configs/model.py`` through :func:`build_detector`.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import flax.linen as nn
import flax.traverse_util
import jax.numpy as jnp
import ml_collections

from data import constants
from inconsistency_jax import audio_features
from inconsistency_jax.models import iresnet
from inconsistency_jax.models import temporal
from inconsistency_jax.models import whisper


class IdentityEncoder(nn.Module):
  """mu (or gamma): faces [B, F, S, S, 3] RGB in [0, 255] -> unit window embedding [B, d].

  S = ``face_size``: 112, AdaFace's input; smaller sizes only for CPU demos (no checkpoint fits).

  The faces of one window go through the IResNet frame by frame (after AdaFace's BGR
  preprocessing, :func:`iresnet.preprocess_faces`); their unit AdaFace features [B, F, 512]
  are aggregated by the temporal transformer. ``frame_valid`` [B, F] masks missing frames.
  """
  embed_dim: int
  arch: str = "ir_101"
  face_size: int = constants.IDENTITY_FACE_SIZE
  stage_widths: Sequence[int] = iresnet.STAGE_WIDTHS
  stem_width: int = iresnet.STEM_WIDTH
  face_embedding_dim: int = iresnet.EMBEDDING_DIM
  backbone_dropout: float = 0.4
  temporal_width: int = 512
  temporal_depth: int = 2
  temporal_heads: int = 8
  temporal_mlp_ratio: int = 4
  temporal_dropout: float = 0.1
  max_frames: int = 64
  bn_axis_name: Optional[str] = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, faces, frame_valid=None, train: bool = False):
    if faces.ndim != 5:
      size = self.face_size
      raise ValueError(f"IdentityEncoder expects faces [batch, frames, {size}, {size}, 3], got "
                       f"{tuple(faces.shape)}")
    batch, frames = faces.shape[:2]
    pixels = iresnet.preprocess_faces(faces.reshape((batch * frames,) + faces.shape[2:]))
    features, _ = iresnet.IResNet(
        arch=self.arch, stage_widths=tuple(self.stage_widths), stem_width=self.stem_width,
        embedding_dim=self.face_embedding_dim, input_size=self.face_size,
        dropout_rate=self.backbone_dropout,
        bn_axis_name=self.bn_axis_name, dtype=self.dtype, name="backbone")(pixels, train)
    features = features.reshape(batch, frames, -1)
    return temporal.TemporalTransformer(
        embed_dim=self.embed_dim, width=self.temporal_width, depth=self.temporal_depth,
        num_heads=self.temporal_heads, mlp_ratio=self.temporal_mlp_ratio,
        max_length=self.max_frames, dropout_rate=self.temporal_dropout, dtype=self.dtype,
        name="temporal")(features, frame_valid, train)


class AudioEncoder(nn.Module):
  """alpha: Whisper log-mel [B, frames, n_mels] -> unit window embedding [B, d].

  With ``allow_shorter_context`` the mel covers just the window; otherwise it covers Whisper's
  30 s (the window zero-padded, see ``models/whisper.py``) and only the first ``window_tokens``
  encoder tokens, those of the window, are pooled.
  """
  embed_dim: int
  n_mels: int = 80
  whisper_width: int = 512
  whisper_heads: int = 8
  whisper_layers: int = 6
  whisper_context: int = whisper.AUDIO_CONTEXT
  allow_shorter_context: bool = True
  window_tokens: Optional[int] = None
  pooling: str = "transformer"
  temporal_width: int = 512
  temporal_depth: int = 2
  temporal_heads: int = 8
  temporal_mlp_ratio: int = 4
  temporal_dropout: float = 0.1
  max_tokens: int = whisper.AUDIO_CONTEXT
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, mel, train: bool = False):
    tokens = whisper.WhisperEncoder(
        n_mels=self.n_mels, width=self.whisper_width, num_heads=self.whisper_heads,
        num_layers=self.whisper_layers, context=self.whisper_context,
        allow_shorter_context=self.allow_shorter_context,
        dtype=self.dtype, name="whisper")(mel)
    if self.window_tokens is not None:
      tokens = tokens[:, :self.window_tokens]
    if self.pooling == "transformer":
      return temporal.TemporalTransformer(
          embed_dim=self.embed_dim, width=self.temporal_width, depth=self.temporal_depth,
          num_heads=self.temporal_heads, mlp_ratio=self.temporal_mlp_ratio,
          max_length=self.max_tokens, dropout_rate=self.temporal_dropout, dtype=self.dtype,
          name="temporal")(tokens, None, train)
    if self.pooling == "mean":
      pooled = jnp.mean(tokens.astype(jnp.float32), axis=1)
      embedding = nn.Dense(self.embed_dim, dtype=self.dtype, name="output_projection")(pooled)
      return temporal.l2_normalize(embedding.astype(jnp.float32))
    raise ValueError(f"audio pooling must be 'transformer' or 'mean', got {self.pooling!r}")


class InconsistencyDetector(nn.Module):
  """The three networks side by side; each call returns a dict of unit window embeddings.

  ``faces`` [B, F, 112, 112, 3] RGB, ``mel`` [B, frames, n_mels]; either may be None to run only
  the networks that need the other. Returns ``{'identity': mu, 'visual': gamma, 'audio': alpha}``
  (each [B, d]) for the inputs given.
  """
  identity_encoder: IdentityEncoder
  visual_encoder: IdentityEncoder
  audio_encoder: AudioEncoder

  def __call__(self, faces=None, mel=None, frame_valid=None, train: bool = False):
    out = {}
    if faces is not None:
      out["identity"] = self.identity_encoder(faces, frame_valid, train)
      out["visual"] = self.visual_encoder(faces, frame_valid, train)
    if mel is not None:
      out["audio"] = self.audio_encoder(mel, train)
    return out


def _identity_encoder(face_config: ml_collections.ConfigDict, temporal_config, embed_dim: int,
                      max_frames: int, bn_axis_name, dtype,
                      face_size: int = constants.IDENTITY_FACE_SIZE) -> IdentityEncoder:
  return IdentityEncoder(
      embed_dim=embed_dim, arch=face_config.arch, face_size=face_size,
      stage_widths=tuple(face_config.stage_widths),
      stem_width=face_config.stem_width, face_embedding_dim=face_config.embedding_dim,
      backbone_dropout=face_config.dropout, temporal_width=temporal_config.width,
      temporal_depth=temporal_config.depth, temporal_heads=temporal_config.num_heads,
      temporal_mlp_ratio=temporal_config.mlp_ratio, temporal_dropout=temporal_config.dropout,
      max_frames=max_frames, bn_axis_name=bn_axis_name, dtype=dtype)


def build_detector(config: ml_collections.ConfigDict, dtype: Any = None,
                   bn_axis_name: Optional[str] = None) -> InconsistencyDetector:
  """The detector described by a model sub-config (``configs/model.py``).

  ``bn_axis_name`` overrides ``config.bn_axis_name`` (e.g. 'batch' inside ``jax.pmap``);
  ``dtype`` overrides ``config.dtype``, the computation dtype (parameters and batch statistics
  stay float32; configs saved before the option existed compute in float32).
  """
  axis = bn_axis_name if bn_axis_name is not None else config.get("bn_axis_name")
  dtype = jnp.dtype(dtype if dtype is not None else config.get("dtype", "float32"))
  if config.audio.context not in ("window", "full"):
    raise ValueError(f"audio.context must be 'window' (Whisper on the window only) or 'full' "
                     f"(30-s padded input), got {config.audio.context!r}")
  dims = whisper_dims(config.audio)
  face_size = config.get("face_size", constants.IDENTITY_FACE_SIZE)
  audio = AudioEncoder(
      embed_dim=config.embed_dim, n_mels=dims.n_mels, whisper_width=dims.width,
      whisper_heads=dims.num_heads, whisper_layers=dims.num_layers,
      allow_shorter_context=config.audio.context == "window",
      window_tokens=None if config.audio.context == "window" else window_tokens(config),
      pooling=config.audio.pooling, temporal_width=config.audio.temporal.width,
      temporal_depth=config.audio.temporal.depth,
      temporal_heads=config.audio.temporal.num_heads,
      temporal_mlp_ratio=config.audio.temporal.mlp_ratio,
      temporal_dropout=config.audio.temporal.dropout, max_tokens=window_tokens(config),
      dtype=dtype)
  return InconsistencyDetector(
      identity_encoder=_identity_encoder(config.identity, config.identity.temporal,
                                         config.embed_dim, config.frames_per_window, axis, dtype,
                                         face_size),
      visual_encoder=_identity_encoder(config.visual, config.visual.temporal, config.embed_dim,
                                       config.frames_per_window, axis, dtype, face_size),
      audio_encoder=audio)


def whisper_dims(audio_config: ml_collections.ConfigDict) -> whisper.WhisperDims:
  """Whisper dims of the audio sub-config: a released size, with optional overrides."""
  if audio_config.whisper_size not in whisper.WHISPER_SIZES:
    raise ValueError(f"audio.whisper_size must be one of {sorted(whisper.WHISPER_SIZES)}, got "
                     f"{audio_config.whisper_size!r}")
  dims = whisper.WHISPER_SIZES[audio_config.whisper_size]._asdict()
  overrides = audio_config.get("whisper_overrides") or {}
  unknown = set(overrides) - set(dims)
  if unknown:
    raise ValueError(f"audio.whisper_overrides has unknown keys {sorted(unknown)}; allowed: "
                     f"{sorted(dims)}")
  dims.update({key: value for key, value in overrides.items() if value is not None})
  return whisper.WhisperDims(**dims)


def window_tokens(config: ml_collections.ConfigDict) -> int:
  """Whisper tokens (20 ms each) in one window of ``config.window_seconds``."""
  samples_per_token = 2 * audio_features.HOP_LENGTH  # the stem's stride-2 convolution
  tokens = int(round(config.window_seconds * constants.WHISPER_SAMPLE_RATE / samples_per_token))
  if not 1 <= tokens <= whisper.AUDIO_CONTEXT:
    raise ValueError(f"window_seconds={config.window_seconds} must lie in (0, 30] s")
  return tokens


def trainable_mask(params) -> Any:
  """A pytree of bools, False for parameters the optimiser must leave alone.

  Whisper keeps its sinusoidal position table fixed; use the mask with ``optax.masked`` or
  ``optax.multi_transform`` so that neither updates nor weight decay touch it.
  """
  flat = flax.traverse_util.flatten_dict(params)
  mask = {path: path[-1] != "positional_embedding" for path in flat}
  return flax.traverse_util.unflatten_dict(mask)
