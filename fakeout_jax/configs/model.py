"""Model sub-config of FakeOut: one ConfigDict per MMV backbone, embedded by experiment configs.

Usage::

  from fakeout_jax.configs import model as model_config
  config.model = model_config.get_config('tsm_resnet_x2')
  module = fakeout_jax.models.create_model(config.model, axis_name='batch')

The values default to the released FakeOut TSM-50x2 (V&A) checkpoint. The released head has
no activation between its three Linear layers; ``head.activation = 'relu'`` is the paper's MLP.
"""
import ml_collections

# MMV's released visual backbones usable by FakeOut and their width multipliers.
BACKBONES = {"tsm_resnet_x1": 1, "tsm_resnet_x2": 2}


def get_config(backbone: str = "tsm_resnet_x2") -> ml_collections.ConfigDict:
  """Returns the model config for 'tsm_resnet_x1' or 'tsm_resnet_x2'."""
  if backbone not in BACKBONES:
    raise ValueError(f"unknown backbone {backbone!r}: choose one of {sorted(BACKBONES)}")
  config = ml_collections.ConfigDict()
  config.backbone = backbone
  config.width_mult = float(BACKBONES[backbone])
  # 'video_audio' (V&A: classify concat(vid_repr, aud_repr)) or 'video' (V: vid_repr only).
  config.modality = "video_audio"
  config.channel_shift_fraction = 0.125
  # ResNet-50 depth and widths of the released models; small CPU configs shrink them.
  config.blocks_per_unit = (3, 4, 6, 3)
  config.audio_width_mult = 1.0
  config.audio_blocks_per_unit = (3, 4, 6, 3)

  config.head = ml_collections.ConfigDict()
  config.head.hidden = (512, 128)
  config.head.num_classes = 2
  # None: the released code (Linear layers back to back); 'relu': the paper's description.
  config.head.activation = ml_collections.config_dict.placeholder(str)

  # Batch norm of the whole network (MMV's cross-replica BN, zero-debiased moving averages).
  config.bn = ml_collections.ConfigDict()
  config.bn.decay = 0.9
  config.bn.epsilon = 1e-5

  # Also return MMV's joint-space embeddings (vid_embd, aud_embd).
  config.compute_embeddings = True
  # MMV's text branch: never used by FakeOut; only to reproduce MMV's text embeddings.
  config.use_text = False
  # Computation dtype ('float32' or 'bfloat16'); parameters stay float32.
  config.dtype = "float32"
  return config
