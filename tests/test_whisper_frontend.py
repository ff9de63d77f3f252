"""Whisper's log-mel front end: parity with openai-whisper, with librosa, and its errors."""
import pathlib

import jax
import librosa
import numpy as np
import pytest

from data import constants
from inconsistency_jax import audio_features

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "inconsistency"
# 1e-3 dB of power is 1e-4 in log10 units, and the output is log10 / 4 (Whisper's (x + 4) / 4).
DB_1E3 = 1e-3 / 10 / 4


@pytest.fixture(scope="module")
def reference():
  return np.load(FIXTURES / "whisper_logmel.npz")


@pytest.mark.parametrize("key,n_mels,padding", [("mel80", 80, 0), ("mel128", 128, 0),
                                                ("mel80_padded", 80, 8000)])
def test_matches_openai_whisper(reference, key, n_mels, padding):
  mel = audio_features.log_mel_spectrogram(reference["audio"], constants.WHISPER_SAMPLE_RATE,
                                           n_mels=n_mels, padding=padding)
  expected = reference[key]  # openai-whisper's (n_mels, frames), stored transposed
  assert mel.shape == expected.shape
  np.testing.assert_allclose(np.asarray(mel), expected, rtol=0, atol=DB_1E3)


def _librosa_log_mel(audio: np.ndarray, n_mels: int) -> np.ndarray:
  """Independent float64 computation from librosa's STFT and filterbank."""
  stft = librosa.stft(audio.astype(np.float64), n_fft=400, hop_length=160, window="hann",
                      center=True, pad_mode="reflect")
  power = np.abs(stft[:, :-1]) ** 2
  mel = librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels, dtype=np.float64) @ power
  log_spec = np.log10(np.maximum(mel, 1e-10))
  log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
  return ((log_spec + 4.0) / 4.0).T


@pytest.mark.parametrize("n_mels", [80, 128])
def test_matches_independent_librosa_computation(reference, n_mels):
  audio = reference["audio"]
  mel = audio_features.log_mel_spectrogram(audio, 16000, n_mels=n_mels)
  np.testing.assert_allclose(np.asarray(mel), _librosa_log_mel(audio, n_mels), rtol=0,
                             atol=DB_1E3)


def test_batch_takes_the_floor_per_example_and_jits(reference):
  audio = reference["audio"][:16000]
  quiet = 0.01 * audio
  batch = np.stack([audio, quiet])
  mel = jax.jit(lambda x: audio_features.log_mel_spectrogram(x, 16000))(batch)
  assert mel.shape == (2, 100, 80)
  for index, example in enumerate((audio, quiet)):
    single = audio_features.log_mel_spectrogram(example, 16000)
    np.testing.assert_allclose(np.asarray(mel[index]), np.asarray(single), atol=1e-6)


def test_pad_or_trim_gives_whisper_context():
  audio = np.ones(1000, np.float32)
  padded = audio_features.pad_or_trim(audio)
  assert padded.shape == (audio_features.N_SAMPLES,)
  assert float(padded[999]) == 1.0 and float(padded[1000]) == 0.0
  mel = audio_features.log_mel_spectrogram(padded, 16000)
  assert mel.shape == (audio_features.N_FRAMES, 80) == (3000, 80)
  assert audio_features.pad_or_trim(np.ones(500_000)).shape == (480_000,)


def test_wrong_sample_rate_is_a_clear_error():
  with pytest.raises(ValueError, match=r"16000 Hz.*got sample_rate=44100.*librosa.resample"):
    audio_features.log_mel_spectrogram(np.zeros(44100, np.float32), constants.SAMPLE_RATE)


def test_unsupported_mel_bins_and_too_short_audio():
  with pytest.raises(ValueError, match="mel bins"):
    audio_features.log_mel_spectrogram(np.zeros(16000), 16000, n_mels=64)
  with pytest.raises(ValueError, match="more than 200 samples"):
    audio_features.log_mel_spectrogram(np.zeros(150), 16000)
