"""Flax modules of the inconsistency detector: AdaFace IResNet, Whisper encoder, transformer."""
from inconsistency_jax.models.detector import AudioEncoder
from inconsistency_jax.models.detector import build_detector
from inconsistency_jax.models.detector import IdentityEncoder
from inconsistency_jax.models.detector import InconsistencyDetector
from inconsistency_jax.models.detector import trainable_mask
from inconsistency_jax.models.iresnet import IResNet
from inconsistency_jax.models.iresnet import preprocess_faces
from inconsistency_jax.models.temporal import TemporalTransformer
from inconsistency_jax.models.whisper import WHISPER_SIZES
from inconsistency_jax.models.whisper import WhisperEncoder

__all__ = [
    "AudioEncoder", "build_detector", "IdentityEncoder", "InconsistencyDetector",
    "trainable_mask", "IResNet", "preprocess_faces", "TemporalTransformer", "WHISPER_SIZES",
    "WhisperEncoder",
]
