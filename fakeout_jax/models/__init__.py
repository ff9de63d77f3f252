"""FakeOut's networks in Flax: the MMV backbones, MMV's projection heads and FakeOut's head."""
import jax.numpy as jnp

from fakeout_jax.models.audio_resnet import AudioResNetV2
from fakeout_jax.models.batch_norm import CrossReplicaBatchNorm
from fakeout_jax.models.fakeout import FakeOut
from fakeout_jax.models.fakeout import FakeOutHead
from fakeout_jax.models.mmv_heads import MMVHeads
from fakeout_jax.models.tsm_resnet import TSMResNetV2
from fakeout_jax.models import tsm_resnet
from fakeout_jax.models.tsm_resnet import temporal_shift

__all__ = ["AudioResNetV2", "CrossReplicaBatchNorm", "FakeOut", "FakeOutHead", "MMVHeads",
           "TSMResNetV2", "create_model", "temporal_shift"]


def create_model(config, **overrides) -> FakeOut:
  """Builds the FakeOut module from a model config (fakeout_jax.configs.model.get_config).

  ``overrides`` set module attributes directly, e.g. ``axis_name='batch'`` from the training
  code, which owns the pmap axis (default None: batch statistics local to each device).
  """
  kwargs = dict(
      width_mult=config.width_mult,
      blocks_per_unit=tuple(config.get("blocks_per_unit", tsm_resnet.BLOCKS_PER_UNIT)),
      audio_width_mult=config.get("audio_width_mult", 1),
      audio_blocks_per_unit=tuple(config.get("audio_blocks_per_unit",
                                             tsm_resnet.BLOCKS_PER_UNIT)),
      modality=config.modality,
      head_activation=config.head.activation,
      head_hidden=tuple(config.head.hidden),
      num_classes=config.head.num_classes,
      compute_embeddings=config.compute_embeddings,
      use_text=config.use_text,
      shift_fraction=config.channel_shift_fraction,
      bn_decay=config.bn.decay,
      bn_epsilon=config.bn.epsilon,
      dtype=jnp.dtype(config.dtype),
  )
  kwargs.update(overrides)
  return FakeOut(**kwargs)
