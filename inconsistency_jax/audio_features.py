"""Whisper's log-mel front end as a pure JAX function (jit-able, no torch, no I/O).

The audio network alpha of the inconsistency detector starts from a pre-trained Whisper encoder,
so its input must be computed exactly as Whisper computes it (openai-whisper ``audio.py``):

* mono waveform at 16 kHz (``data.constants.WHISPER_SAMPLE_RATE``), float in [-1, 1];
* STFT with n_fft 400, hop 160, a periodic Hann window, centre padding by reflection;
* power |X|^2, the last STFT frame dropped (so ``samples // 160`` frames);
* an 80- or 128-bin Slaney mel filterbank (librosa's default ``filters.mel``);
* ``log10(max(mel, 1e-10))``, then ``max(x, x.max() - 8)`` (an 80 dB floor under the loudest
  bin), then ``(x + 4) / 4``.

One deliberate difference in layout: the result is time-major and channels-last,
``[..., frames, n_mels]``, the transpose of openai-whisper's ``(n_mels, frames)``, because Flax
convolutions take channels last. The ``max - 8`` floor is taken per example (over the last two
axes); openai-whisper takes it over whatever tensor it is given, which is the same for the one
clip at a time that it processes.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import librosa
import numpy as np

from data import constants

N_FFT = 400
HOP_LENGTH = 160
CHUNK_SECONDS = 30
# Whisper's fixed context: 30 s = 480000 samples = 3000 mel frames = 1500 encoder tokens.
N_SAMPLES = CHUNK_SECONDS * constants.WHISPER_SAMPLE_RATE
N_FRAMES = N_SAMPLES // HOP_LENGTH
SUPPORTED_MEL_BINS = (80, 128)

_LOG_FLOOR = 1e-10
_DYNAMIC_RANGE = 8.0  # log10 units = 80 dB


@functools.lru_cache(maxsize=None)
def mel_filterbank(n_mels: int) -> np.ndarray:
  """Slaney mel filterbank, [n_fft // 2 + 1, n_mels] float32 (Whisper ships librosa's)."""
  if n_mels not in SUPPORTED_MEL_BINS:
    raise ValueError(f"Whisper uses {SUPPORTED_MEL_BINS} mel bins (80 for tiny..large-v2, 128 "
                     f"for large-v3); got n_mels={n_mels}")
  filters = librosa.filters.mel(sr=constants.WHISPER_SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels)
  return np.ascontiguousarray(filters.T.astype(np.float32))


def _periodic_hann(length: int) -> np.ndarray:
  # torch.hann_window's default (periodic=True): the DFT-even window of length + 1, last dropped.
  n = np.arange(length, dtype=np.float64)
  return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)).astype(np.float32)


def check_sample_rate(sample_rate: int) -> None:
  """Raises a ValueError that says what to do when audio is not at Whisper's 16 kHz."""
  if int(sample_rate) != constants.WHISPER_SAMPLE_RATE:
    raise ValueError(
        f"Whisper's front end needs mono audio at {constants.WHISPER_SAMPLE_RATE} Hz "
        f"(data.constants.WHISPER_SAMPLE_RATE), got sample_rate={sample_rate}. Resample first, "
        f"e.g. librosa.resample(audio, orig_sr={sample_rate}, "
        f"target_sr={constants.WHISPER_SAMPLE_RATE}).")


def pad_or_trim(audio, length: int = N_SAMPLES):
  """Zero-pads or cuts the last axis of a waveform to ``length`` samples (default 30 s)."""
  audio = jnp.asarray(audio)
  if audio.shape[-1] >= length:
    return audio[..., :length]
  widths = [(0, 0)] * (audio.ndim - 1) + [(0, length - audio.shape[-1])]
  return jnp.pad(audio, widths)


def log_mel_spectrogram(audio, sample_rate: int, n_mels: int = 80,
                        padding: int = 0) -> jax.Array:
  """Whisper's log-mel spectrogram of a 16-kHz waveform.

  Args:
    audio: [..., samples] float waveform in [-1, 1] (numpy or JAX), mono, at 16 kHz.
    sample_rate: the waveform's sample rate; anything but 16000 raises a ValueError.
    n_mels: 80 (Whisper tiny..large-v2) or 128 (large-v3).
    padding: zero samples appended on the right before the STFT (openai-whisper's argument).

  Returns:
    [..., (samples + padding) // 160, n_mels] float32, time-major (see the module docstring).
  """
  check_sample_rate(sample_rate)
  filters = jnp.asarray(mel_filterbank(n_mels))
  audio = jnp.asarray(audio, jnp.float32)
  if padding:
    audio = jnp.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(0, int(padding))])
  num_samples = audio.shape[-1]
  half = N_FFT // 2
  if num_samples <= half:
    raise ValueError(f"need more than {half} samples ({half / constants.WHISPER_SAMPLE_RATE:.4f}"
                     f" s) for the reflect-padded STFT, got {num_samples}")
  padded = jnp.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(half, half)], mode="reflect")
  # The centred STFT has 1 + samples // hop frames; Whisper drops the last one.
  num_frames = num_samples // HOP_LENGTH
  starts = np.arange(num_frames) * HOP_LENGTH
  frames = padded[..., starts[:, None] + np.arange(N_FFT)[None, :]]
  spectrum = jnp.fft.rfft(frames * jnp.asarray(_periodic_hann(N_FFT)), axis=-1)
  power = jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2
  mel = jnp.matmul(power, filters, precision=jax.lax.Precision.HIGHEST)
  log_spec = jnp.log10(jnp.maximum(mel, _LOG_FLOOR))
  peak = jnp.max(log_spec, axis=(-2, -1), keepdims=True)
  log_spec = jnp.maximum(log_spec, peak - _DYNAMIC_RANGE)
  return (log_spec + 4.0) / 4.0
