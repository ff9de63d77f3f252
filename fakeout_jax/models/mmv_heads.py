"""MMV's projection heads into the joint spaces (the `fac_relu` graph) and its text branch.

Alayrac et al. embed video and audio in a fine-grained video-audio space (S_va, 512-d) and
video, audio and text in a coarser video-text space (S_vat, 256-d) reached from S_va through a
ReLU and a linear layer ("fac_relu"). FakeOut's logits do not use these heads; they are here so
an MMV checkpoint is reproduced completely (e.g. for the audio-visual similarity of FakeOut's
Fig. 4) and so fine-tuning can keep them.

Heads (submodule names):
* video_to_audio: Dense(512) -> norm -> ReLU -> Dense(512, no bias) -> norm  (mode "mlp@512")
* video_to_text: Dense(256) -> norm, applied to ReLU(video_to_audio output)
* audio_to_video: Dense(512)
* audio_to_text: Dense(512); used in training only. In evaluation audio reaches S_vat like
  video does: video_to_text(ReLU(audio_to_video output)), sharing its weights and statistics.
* text_to_video: Dense(256), text_to_audio: Dense(512)  (text branch, optional)
"""
import functools
from typing import Any, Dict, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from fakeout_jax.models import batch_norm

VIDEO_AUDIO_DIM = 512
VIDEO_TEXT_DIM = 256
AUDIO_TEXT_DIM = 512
MLP_INNER_DIM = 512
# The original text branch: 65536 word2vec-style embeddings of 300 dims, a 1x1 Conv1D to 2048
# and a max over tokens.
TEXT_VOCABULARY = 65536
WORD_EMBEDDING_DIM = 300
SENTENCE_DIM = 2048


class MLPProjection(nn.Module):
  """Dense -> norm -> ReLU -> Dense (no bias) -> norm: the "mlp@512" head with BN after it.

  [B, D_in] -> [B, features]. Submodules: inner_dense, inner_norm, dense, out_norm.
  """
  features: int = VIDEO_AUDIO_DIM
  inner_features: int = MLP_INNER_DIM
  norm: Any = batch_norm.CrossReplicaBatchNorm
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = nn.Dense(self.inner_features, dtype=self.dtype, name="inner_dense")(x)
    x = nn.relu(self.norm(name="inner_norm")(x, train))
    x = nn.Dense(self.features, use_bias=False, dtype=self.dtype, name="dense")(x)
    return self.norm(name="out_norm")(x, train)


class LinearProjection(nn.Module):
  """Dense, optionally followed by norm. [B, D_in] -> [B, features]."""
  features: int
  use_norm: bool = False
  norm: Any = batch_norm.CrossReplicaBatchNorm
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = nn.Dense(self.features, dtype=self.dtype, name="dense")(x)
    if self.use_norm:
      x = self.norm(name="out_norm")(x, train)
    return x


class TextEncoder(nn.Module):
  """MMV's sentence encoder: frozen word embeddings, 1x1 Conv1D, ReLU, max over tokens.

  word_ids [B, N] int -> [B, 2048]. The embedding table is a parameter (it is in every MMV
  checkpoint) but receives no gradient, as in the original.
  """
  vocabulary: int = TEXT_VOCABULARY
  word_dim: int = WORD_EMBEDDING_DIM
  sentence_dim: int = SENTENCE_DIM
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, word_ids: jax.Array) -> jax.Array:
    words = nn.Embed(self.vocabulary, self.word_dim, embedding_init=nn.initializers.zeros,
                     name="embed")(word_ids)
    words = jax.lax.stop_gradient(words)
    sentence = nn.Conv(self.sentence_dim, (1,), dtype=self.dtype, name="conv")(words)
    return jnp.max(nn.relu(sentence), axis=1).astype(jnp.float32)


class MMVHeads(nn.Module):
  """The `fac_relu` projection heads of MMV.

  Args (call): vid_repr [B, 2048 * width_mult]; aud_repr [B, 2048] or None; txt_repr
  [B, 2048] or None; train.

  Returns a dict of float32 embeddings: vid_embd {toaud [B, 512], totxt [B, 256]}; with audio
  aud_embd {tovid [B, 512], totxt [B, 256] in eval | [B, 512] in training}; with text txt_embd
  {tovid [B, 256], toaud [B, 512]}.
  """
  bn_decay: float = batch_norm.DEFAULT_DECAY
  bn_epsilon: float = batch_norm.DEFAULT_EPSILON
  axis_name: Optional[str] = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, vid_repr: jax.Array, aud_repr: Optional[jax.Array] = None,
               txt_repr: Optional[jax.Array] = None, *,
               train: bool) -> Dict[str, Dict[str, jax.Array]]:
    norm = functools.partial(batch_norm.CrossReplicaBatchNorm, decay=self.bn_decay,
                             epsilon=self.bn_epsilon, axis_name=self.axis_name, dtype=self.dtype)
    video_to_audio = MLPProjection(VIDEO_AUDIO_DIM, norm=norm, dtype=self.dtype,
                                   name="video_to_audio")
    video_to_text = LinearProjection(VIDEO_TEXT_DIM, use_norm=True, norm=norm, dtype=self.dtype,
                                     name="video_to_text")
    f32 = functools.partial(jnp.asarray, dtype=jnp.float32)

    vid_toaud = video_to_audio(vid_repr, train)
    outputs = {"vid_embd": {"toaud": f32(vid_toaud),
                            "totxt": f32(video_to_text(nn.relu(vid_toaud), train))}}
    if aud_repr is not None:
      aud_tovid = nn.Dense(VIDEO_AUDIO_DIM, dtype=self.dtype, name="audio_to_video")(aud_repr)
      # audio_to_text exists in every checkpoint but only serves in training: in evaluation
      # audio goes to S_vat through the video head, so the head's statistics stay video-only.
      audio_to_text = nn.Dense(AUDIO_TEXT_DIM, dtype=self.dtype, name="audio_to_text")
      if train or self.is_initializing():
        aud_totxt_train = audio_to_text(aud_repr)
      aud_totxt = (aud_totxt_train if train
                   else video_to_text(nn.relu(aud_tovid), train))
      outputs["aud_embd"] = {"tovid": f32(aud_tovid), "totxt": f32(aud_totxt)}
    if txt_repr is not None:
      outputs["txt_embd"] = {
          "tovid": f32(nn.Dense(VIDEO_TEXT_DIM, dtype=self.dtype, name="text_to_video")(txt_repr)),
          "toaud": f32(nn.Dense(AUDIO_TEXT_DIM, dtype=self.dtype, name="text_to_audio")(txt_repr)),
      }
    return outputs
