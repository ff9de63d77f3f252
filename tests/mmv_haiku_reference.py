"""Test oracle: MMV + FakeOut in Haiku, written from the facts in tests/reference/mmv.

Its parameter and state trees equal those of the original code (module paths, names, shapes,
dtypes; checked against the reference JSON by the tests), so its pickled variables have the
exact layout of DeepMind's and FakeOut's released checkpoints, and its outputs are what the
original network computes. Test and benchmark code only; not shipped.

Haiku derives module paths from class names and construction sites: '~/' marks a submodule
built in its parent's __init__, '~<method>/' one built in another method, nothing one built in
__call__. The classes below are shaped so that the same paths come out.
"""
from typing import Optional

import haiku as hk
import jax
import jax.numpy as jnp

ROOT_NAME = "text_audio_video"
MLP_LAYER_NAMES = ("first_mlp_layer", "second_mlp_layer", "third_mlp_layer")
VOCABULARY, WORD_DIM, SENTENCE_DIM = 65536, 300, 2048
CROSS_REPLICA_AXIS = "i"
SHIFT_FRACTION = 0.125
# Axis the norms average over in training; transformed(axis_name=None) builds the same trees
# without a collective (e.g. to init outside pmap).
_axis_name = [CROSS_REPLICA_AXIS]


class _CrossReplicaBatchNorm(hk.BatchNorm):
  """hk.BatchNorm with MMV's settings; the class name yields '__cross_replica_batch_norm'."""

  def __init__(self):
    super().__init__(create_scale=True, create_offset=True, decay_rate=0.9, eps=1e-5,
                     cross_replica_axis=_axis_name[0])

  def __call__(self, x, is_training):  # pylint: disable=arguments-differ
    return super().__call__(x, is_training)


def _conv(channels, kernel, stride=1, name=None):
  return hk.Conv2D(channels, kernel, stride=stride, with_bias=False, padding="SAME", name=name)


def _max_pool(x):
  return hk.max_pool(x, window_shape=(1, 3, 3, 1), strides=(1, 2, 2, 1), padding="SAME")


def shift_frames(x, num_frames):
  """The original layout: [next frame's last n | middle | previous frame's first n]."""
  shape = x.shape
  channels = shape[-1]
  n = int(channels * SHIFT_FRACTION)
  clips = jnp.reshape(x, (-1, num_frames) + shape[1:])
  zeros = jnp.zeros_like(clips[:, :1, ..., :n])
  from_next = jnp.concatenate([clips[:, 1:, ..., channels - n:], zeros], axis=1)
  from_previous = jnp.concatenate([zeros, clips[:, :-1, ..., :n]], axis=1)
  return jnp.reshape(
      jnp.concatenate([from_next, clips[..., n:channels - n], from_previous], axis=-1), shape)


# ---------------------------------------------------------------- video: TSM-ResNetV2-50


class _TSMBlock(hk.Module):
  """Convolutions built in __call__: '.../block_0/conv_0'."""

  def __init__(self, channels, stride, project, num_frames, name):
    super().__init__(name=name)
    self.channels, self.stride, self.project, self.num_frames = (channels, stride, project,
                                                                 num_frames)

  def __call__(self, x, is_training):
    preact = jax.nn.relu(_CrossReplicaBatchNorm()(x, is_training))
    shortcut = x
    if self.project:
      shortcut = _conv(self.channels, 1, self.stride, "shortcut_conv")(preact)
    net = shift_frames(preact, self.num_frames)
    net = _conv(self.channels // 4, 1, name="conv_0")(net)
    net = jax.nn.relu(_CrossReplicaBatchNorm()(net, is_training))
    net = _conv(self.channels // 4, 3, self.stride, "conv_1")(net)
    net = jax.nn.relu(_CrossReplicaBatchNorm()(net, is_training))
    net = _conv(self.channels, 1, name="conv_2")(net)
    return shortcut + net


class _TSMUnit(hk.Module):

  def __init__(self, channels, blocks, stride, num_frames, name):
    super().__init__(name=name)
    self.channels, self.blocks, self.stride, self.num_frames = channels, blocks, stride, num_frames

  def __call__(self, x, is_training):
    for b in range(self.blocks):
      x = _TSMBlock(self.channels, self.stride if b == 0 else 1, b == 0, self.num_frames,
                    f"block_{b}")(x, is_training)
    return x


class _TSMResNetV2(hk.Module):

  def __init__(self, width_mult):
    super().__init__(name="TSMResNetV2")
    self.width_mult = width_mult

  def __call__(self, images, is_training):
    batch, frames = images.shape[:2]
    net = jnp.reshape(images, (batch * frames,) + images.shape[2:])
    net = _max_pool(_conv(64 * self.width_mult, 7, 2, "tsm_resnet_stem")(net))
    for u, (channels, blocks, stride) in enumerate(
        zip((256, 512, 1024, 2048), (3, 4, 6, 3), (1, 2, 2, 2))):
      net = _TSMUnit(channels * self.width_mult, blocks, stride, frames,
                     f"tsm_resnet_unit_{u}")(net, is_training)
    net = jax.nn.relu(_CrossReplicaBatchNorm()(net, is_training))
    net = jnp.mean(net, axis=(1, 2))
    return jnp.mean(jnp.reshape(net, (batch, frames, -1)), axis=1)


class _VisualModule(hk.Module):

  def __init__(self, width_mult):
    super().__init__(name="visual_module")
    self.cnn = _TSMResNetV2(width_mult)

  def __call__(self, images, is_training):
    return self.cnn(images, is_training)


# ---------------------------------------------------------------- audio: ResNetV2-50


class _AudioBlock(hk.Module):
  """Convolutions built in __init__ ('.../block_0/~/conv_0'), norms in __call__."""

  def __init__(self, channels, stride, project, name):
    super().__init__(name=name)
    self.project = project
    if project:
      self.shortcut_conv = _conv(channels, 1, stride, "shortcut_conv")
    self.convs = [_conv(channels // 4, 1, name="conv_0"),
                  _conv(channels // 4, 3, stride, "conv_1"),
                  _conv(channels, 1, name="conv_2")]

  def __call__(self, x, is_training):
    net, shortcut = x, x
    for i, conv in enumerate(self.convs):
      net = jax.nn.relu(_CrossReplicaBatchNorm()(net, is_training))
      if i == 0 and self.project:
        shortcut = self.shortcut_conv(net)
      net = conv(net)
    return net + shortcut


class _AudioBlockGroup(hk.Module):

  def __init__(self, channels, blocks, stride, name):
    super().__init__(name=name)
    self.channels, self.blocks, self.stride = channels, blocks, stride

  def __call__(self, x, is_training):
    for b in range(self.blocks):
      project = b == 0 and x.shape[-1] != self.channels
      x = _AudioBlock(self.channels, self.stride if b == 0 else 1, project,
                      f"block_{b}")(x, is_training)
    return x


class ResNetV2(hk.Module):
  """Default module name 'res_net_v2'."""

  def __init__(self):
    super().__init__()
    self.initial_conv = _conv(64, 7, 2, "initial_conv")
    self.groups = [_AudioBlockGroup(c, n, s, f"block_group_{g}") for g, (c, n, s) in enumerate(
        zip((256, 512, 1024, 2048), (3, 4, 6, 3), (1, 2, 2, 2)))]

  def __call__(self, x, is_training):
    net = _max_pool(self.initial_conv(x))
    for group in self.groups:
      net = group(net, is_training)
    net = jax.nn.relu(_CrossReplicaBatchNorm()(net, is_training))
    return jnp.mean(net, axis=(1, 2))


class _AudioModule(hk.Module):

  def __init__(self):
    super().__init__(name="audio_module")
    self.cnn = ResNetV2()

  def __call__(self, spectrogram, is_training):
    return self.cnn(spectrogram, is_training)


# ---------------------------------------------------------------- text


class _TextModule(hk.Module):

  def __init__(self):
    super().__init__(name="text_module")
    self.embed = hk.Embed(embedding_matrix=jnp.zeros((VOCABULARY, WORD_DIM), jnp.float32))
    self.conv = hk.Conv1D(SENTENCE_DIM, 1, name="text_conv1")

  def __call__(self, word_ids):
    words = jax.lax.stop_gradient(self.embed(word_ids))
    return jnp.max(jax.nn.relu(self.conv(words)), axis=1)


# ---------------------------------------------------------------- heads and root


class _EmbeddingHead(hk.Module):
  """'linear' or 'mlp@512' projection, optionally followed by BN (norms built in __call__)."""

  def __init__(self, dim, mlp, bn_after, name):
    super().__init__(name=name)
    self.dim, self.mlp, self.bn_after = dim, mlp, bn_after

  def __call__(self, x, is_training):
    if self.mlp:
      x = hk.Linear(512, name="final_projection_inner")(x)
      x = jax.nn.relu(_CrossReplicaBatchNorm()(x, is_training))
    x = hk.Linear(self.dim, with_bias=not (self.mlp and self.bn_after),
                  name="final_projection")(x)
    if self.bn_after:
      x = _CrossReplicaBatchNorm()(x, is_training)
    return x


class _AudioTextVideo(hk.Module):
  """The root 'text_audio_video' with the fac_relu graph."""

  def __init__(self, width_mult):
    super().__init__(name=ROOT_NAME)
    self.width_mult = width_mult

  def _get_pair_embedding_heads(self, first, second):
    # Built here, in a method other than __call__: paths get '~_get_pair_embedding_heads/'.
    return _EmbeddingHead(*first), _EmbeddingHead(*second)

  def __call__(self, images, audio, word_ids, is_training):
    vid_repr = _VisualModule(self.width_mult)(images, is_training)
    vid_to_txt, vid_to_aud = self._get_pair_embedding_heads(
        (256, False, True, "vis_embd"), (512, True, True, "vid2audio_embd"))
    vid_toaud = vid_to_aud(vid_repr, is_training)
    vid_embd = {"toaud": vid_toaud, "totxt": vid_to_txt(jax.nn.relu(vid_toaud), is_training)}

    aud_repr = _AudioModule()(audio, is_training)
    aud_to_vid, aud_to_txt = self._get_pair_embedding_heads(
        (512, False, False, "audio_embd"), (512, False, False, "audio2txt_embd"))
    aud_tovid = aud_to_vid(aud_repr, is_training)
    if is_training:
      aud_totxt = aud_to_txt(aud_repr, is_training)
    else:
      aud_totxt = vid_to_txt(jax.nn.relu(aud_tovid), is_training)
    aud_embd = {"tovid": aud_tovid, "totxt": aud_totxt}

    txt_repr = _TextModule()(word_ids)
    txt_to_vid, txt_to_aud = self._get_pair_embedding_heads(
        (256, False, False, "txt_embd"), (512, False, False, "txt2audio_embd"))
    txt_embd = {"tovid": txt_to_vid(txt_repr, is_training),
                "toaud": txt_to_aud(txt_repr, is_training)}
    return {"vid_embd": vid_embd, "aud_embd": aud_embd, "txt_embd": txt_embd,
            "vid_repr": vid_repr, "aud_repr": aud_repr}


def forward(images, audio, word_ids, is_training, width_mult=1, use_audio=True):
  """FakeOut's forward: MMV outputs plus logits of the three-Linear head (no activation)."""
  outputs = _AudioTextVideo(width_mult)(images, audio, word_ids, is_training)
  features = outputs["vid_repr"]
  if use_audio:
    features = jnp.concatenate([outputs["vid_repr"], outputs["aud_repr"]], axis=1)
  init = hk.initializers.TruncatedNormal(0.02)
  for name, size in zip(MLP_LAYER_NAMES, (512, 128, 2)):
    features = hk.Linear(size, w_init=init, name=name)(features)
  outputs["logits"] = features
  return outputs


def transformed(width_mult=1, use_audio=True, axis_name: Optional[str] = CROSS_REPLICA_AXIS):
  """hk.transform_with_state of the forward for one width; apply(params, state, None, ...).

  Training mode needs ``axis_name`` bound (pmap/shard_map) unless it is None.
  """
  def fn(images, audio, word_ids, is_training):
    _axis_name[0] = axis_name
    return forward(images, audio, word_ids, is_training, width_mult, use_audio)
  return hk.transform_with_state(fn)


# ---------------------------------------------------------------- random checkpoints


def variable_shapes(width_mult=1):
  """(params, state) of ShapeDtypeStructs, from an abstract training-mode init."""
  model = transformed(width_mult, axis_name=None)
  inputs = (jnp.zeros((1, 2, 32, 32, 3)), jnp.zeros((1, 32, 32, 1)),
            jnp.zeros((1, 4), jnp.int32), True)
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), *inputs))


def random_checkpoint(width_mult=1, seed=0, decay=0.9):
  """A checkpoint of the original layout, {'params', 'state'}, with random numpy values.

  Not a fresh init: norm scales/offsets, biases and moving statistics are random too, and the
  moving averages are consistent (average = hidden / (1 - decay**counter)), so every mapped
  value matters to the outputs.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(seed)
  params_shapes, state_shapes = variable_shapes(width_mult)
  params = {}
  for module, entries in params_shapes.items():
    params[module] = {}
    for name, leaf in entries.items():
      shape = leaf.shape
      if name == "w":
        fan_in = int(np.prod(shape[:-1]))
        value = rng.standard_normal(shape, np.float32) * np.float32(np.sqrt(1.0 / fan_in))
      elif name in ("b", "offset"):
        value = rng.standard_normal(shape, np.float32) * np.float32(0.1)
      elif name == "scale":
        value = rng.uniform(0.5, 1.5, shape).astype(np.float32)
      else:  # word embeddings
        value = rng.standard_normal(shape, np.float32)
      params[module][name] = value
  state = {}
  for module in state_shapes:
    shape = state_shapes[module]["average"].shape
    counter = int(rng.integers(1, 500))
    if module.endswith("mean_ema"):
      average = rng.standard_normal(shape, np.float32) * np.float32(0.3)
    else:
      average = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    hidden = (average * np.float32(1.0 - decay ** counter)).astype(np.float32)
    state[module] = {"counter": np.asarray(counter, np.int32), "hidden": hidden,
                     "average": average}
  return {"params": params, "state": state}
