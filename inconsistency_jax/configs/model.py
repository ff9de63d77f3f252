r"""Model sub-config of the inconsistency detector (mu, gamma, alpha), embeddable in run configs.

Usage::

  from inconsistency_jax.configs import model as model_config
  config.model = model_config.get_config()        # paper-scale defaults
  config.model = model_config.get_config("tiny")  # CPU tests and the demo

  detector = inconsistency_jax.models.build_detector(config.model)

Facts (Tian et al.; AdaFace; Whisper): mu and gamma are AdaFace IResNets followed by a
transformer over a time window, alpha is a Whisper encoder, every output is a unit d-dim
vector, all layers are fine-tuned. IResNet and Whisper layouts are fixed by their checkpoints.

Choices, where the paper is silent (the authors' code and appendix are not public, so window
length, T, N, tau, tau', n, the transformer and the Whisper size are ours):

* ``identity.arch = 'ir_101'``: AdaFace's MS1MV3 and WebFace4M releases, which the paper names
  as pre-training sets, are IR-101 models (IR-50 exists only for MS1MV2, CASIA and WebFace4M).
* ``visual`` = ``identity``: gamma has mu's architecture and starts from the same AdaFace
  weights, trained separately.
* ``embed_dim = 512`` (d): AdaFace's own feature size, so mu starts in a space of the size of the
  pre-trained identity space; similarity matrices of T windows stay cheap at this size.
* ``window_seconds = 1.0``: Fig. 3 localises inconsistencies at the scale of seconds; one-second
  windows give one row of the T x T similarity matrices per second and 50 Whisper tokens.
* ``frames_per_window = 8``: evenly spaced faces of the 29 in a second (data.constants.FPS);
  identity changes slowly, so neighbouring frames are nearly redundant, and 8 keeps two IR-101
  passes per face (mu and gamma) affordable. The input pipeline samples them.
* transformer (mu, gamma and alpha alike): ``depth = 2``, ``width = 512``, ``num_heads = 8``,
  ``mlp_ratio = 4``, ``dropout = 0.1``, [CLS] pooling. The aggregation has at most 50 inputs, so a
  shallow encoder suffices; width 512 keeps AdaFace's features unprojected in size.
* ``audio.whisper_size = 'small'``: an encoder of about the visual backbone's capacity
  (Whisper-small's encoder has 88 M parameters, IR-101 65 M; base would have 20 M).
* ``audio.context = 'window'``: Whisper runs on the window only, with its position table sliced
  (``models/whisper.py`` explains the trade-off against ``'full'``, 30-s padded inputs).
* ``audio.pooling = 'transformer'``: the same aggregator as the visual side over Whisper tokens.
* ``face_size = 112``: AdaFace's input (data.constants.IDENTITY_FACE_SIZE); pre-trained AdaFace
  weights need it. Smaller faces (the input pipeline resizes the records' 112-px faces) exist
  only to make CPU demos affordable; the IResNet head then flattens a smaller map.
* ``bn_axis_name = None``: per-device batch statistics; training configs that pmap set 'batch'.

T (windows per video), N (identities per batch), tau, tau', the percentile n, optimiser and
schedule belong to the training and scoring configs, not to this sub-config.
"""
import ml_collections
import ml_collections.config_dict

from data import constants


def _transformer(width: int, depth: int, num_heads: int,
                 dropout: float) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      width=width, depth=depth, num_heads=num_heads, mlp_ratio=4, dropout=dropout))


def _face_network(arch: str, stage_widths, stem_width: int, embedding_dim: int,
                  temporal: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      arch=arch, stage_widths=tuple(stage_widths), stem_width=stem_width,
      embedding_dim=embedding_dim, dropout=0.4, temporal=temporal))


def get_config(arg: str = "default") -> ml_collections.ConfigDict:
  """'default' (paper scale, IR-101 + Whisper-small) or 'tiny' (CPU tests and demo)."""
  if arg not in ("default", "tiny"):
    raise ValueError(f"model config variant must be 'default' or 'tiny', got {arg!r}")
  config = ml_collections.ConfigDict()
  config.bn_axis_name = ml_collections.config_dict.placeholder(str)
  config.face_size = constants.IDENTITY_FACE_SIZE
  if arg == "default":
    config.embed_dim = 512
    config.window_seconds = 1.0
    config.frames_per_window = 8
    config.identity = _face_network("ir_101", (64, 128, 256, 512), 64, 512,
                                    _transformer(512, 2, 8, 0.1))
    config.audio = ml_collections.ConfigDict(dict(
        whisper_size="small", whisper_overrides=ml_collections.ConfigDict(),
        context="window", pooling="transformer", temporal=_transformer(512, 2, 8, 0.1)))
  else:
    # Same code paths, sizes a CPU runs in seconds; not for real checkpoints.
    config.embed_dim = 32
    config.window_seconds = 0.5
    config.frames_per_window = 4
    config.identity = _face_network("ir_18", (8, 16, 32, 64), 8, 64, _transformer(64, 1, 2, 0.0))
    config.audio = ml_collections.ConfigDict(dict(
        whisper_size="tiny",
        whisper_overrides=ml_collections.ConfigDict(dict(width=64, num_heads=2, num_layers=1)),
        context="window", pooling="transformer", temporal=_transformer(64, 1, 2, 0.0)))
  config.visual = ml_collections.ConfigDict(config.identity.to_dict())
  # Computation dtype, 'float32' (paper runs) or 'bfloat16' (TPU/GPU); parameters, optimiser
  # state and batch statistics stay float32, embeddings are normalised in float32.
  config.dtype = "float32"
  return config
