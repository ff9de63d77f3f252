"""Procedural speech: syllable timelines, a source-filter voice, and the room it is heard in.

An `Utterance` is a timeline of syllables (consonant onset + vowel nucleus) grouped into
phrases with pauses. The same timeline drives both modalities:

* the mouth opening of a face saying it (`Utterance.mouth_track`): the vowel's openness times
  the syllable envelope, smoothed by articulatory inertia;
* the audio (`synthesize`): a band-limited glottal sawtooth (pitch contour with phrase
  declination, stress accents and jitter, plus breath noise) through a cascade of four formant
  resonators whose targets follow the vowels, plus fricative noise and plosive bursts. Open
  vowels are louder, as in real speech, so loudness and mouth opening go together.

`Voice` holds one identity's vocal parameters (pitch, vocal-tract length via a formant scale,
breathiness, spectral tilt, speaking rate); `Room` holds a recording's acoustics (reverb, noise
floor, mains hum, level), which belong to the video so that replaced audio sounds like the
same room.

espeak-ng is not installed in the reference environment, so it is not used.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import signal

# vowel -> (F1, F2, F3, F4) in Hz for an adult male vocal tract, and mouth openness in [0, 1].
VOWELS = {
    "a": ((730, 1090, 2440, 3400), 1.0),
    "e": ((530, 1840, 2480, 3500), 0.65),
    "i": ((300, 2250, 3000, 3700), 0.4),
    "o": ((570, 840, 2410, 3400), 0.7),
    "u": ((320, 870, 2240, 3300), 0.35),
}
_VOWEL_NAMES = tuple(VOWELS)
CONSONANTS = ("none", "plosive", "fricative", "nasal", "liquid")
_CONSONANT_SECONDS = {"none": 0.0, "plosive": 0.045, "fricative": 0.07, "nasal": 0.05,
                      "liquid": 0.04}
_BANDWIDTHS = (70.0, 100.0, 130.0, 170.0)
_CONTROL_SECONDS = 0.005  # formant / amplitude control period
_ATTACK, _RELEASE = 0.035, 0.07
_MOUTH_INERTIA = 0.025  # seconds (Gaussian sigma) of articulatory smoothing
_FINE_RATE = 1000  # Hz of the mouth-opening curve before frame averaging


@dataclasses.dataclass(frozen=True)
class Voice:
  """One speaker's vocal parameters."""
  pitch_hz: float
  pitch_range: float  # semitones of a fully stressed accent
  formant_scale: float  # > 1: shorter vocal tract
  breathiness: float
  tilt: float  # one-pole low-pass coefficient on the glottal source
  rate: float  # syllables per second
  jitter: float  # semitones of slow random pitch wander

  @classmethod
  def sample(cls, rng: np.random.Generator, gender: str) -> "Voice":
    feminine = gender == "women"
    return cls(
        pitch_hz=float(rng.uniform(175, 240) if feminine else rng.uniform(92, 140)),
        pitch_range=float(rng.uniform(2.0, 5.0)),
        formant_scale=float(rng.uniform(1.1, 1.22) if feminine else rng.uniform(0.93, 1.05)),
        breathiness=float(rng.uniform(0.02, 0.12)),
        tilt=float(rng.uniform(0.55, 0.85)),
        rate=float(rng.uniform(3.8, 5.5)),
        jitter=float(rng.uniform(0.2, 0.6)))


@dataclasses.dataclass(frozen=True)
class Syllable:
  start: float
  duration: float
  vowel: str
  consonant: str
  stress: float  # 0 (unstressed) .. 1

  @property
  def nucleus_start(self) -> float:
    return self.start + _CONSONANT_SECONDS[self.consonant]

  @property
  def end(self) -> float:
    return self.start + self.duration

  @property
  def amplitude(self) -> float:
    openness = VOWELS[self.vowel][1]
    return (0.55 + 0.45 * self.stress) * (0.55 + 0.45 * openness)


@dataclasses.dataclass(frozen=True)
class Utterance:
  """A syllable timeline of `duration` seconds."""
  utterance_id: str
  duration: float
  syllables: tuple[Syllable, ...]

  def nucleus_envelope(self, times: np.ndarray) -> np.ndarray:
    """Voiced amplitude of the vowel nuclei at `times` (seconds), in [0, 1]."""
    out = np.zeros_like(times, dtype=np.float64)
    for syllable in self.syllables:
      _add_nucleus(out, times, syllable, syllable.amplitude)
    return out

  def mouth_curve(self, times: np.ndarray) -> np.ndarray:
    """Mouth opening at `times` before articulatory smoothing."""
    out = np.zeros_like(times, dtype=np.float64)
    for syllable in self.syllables:
      openness = VOWELS[syllable.vowel][1]
      _add_nucleus(out, times, syllable, (0.6 + 0.4 * syllable.stress) * openness)
    return out

  def mouth_track(self, fps: float, num_frames: int) -> np.ndarray:
    """Mouth opening in [0, 1] per video frame (mean over each frame's interval)."""
    return _frame_average(self.mouth_curve, fps, num_frames, smooth=_MOUTH_INERTIA)

  def loudness_track(self, fps: float, num_frames: int) -> np.ndarray:
    """Voiced amplitude per video frame: what an RMS envelope of the audio follows."""
    return _frame_average(self.nucleus_envelope, fps, num_frames, smooth=0.0)


def _add_nucleus(out: np.ndarray, times: np.ndarray, syllable: Syllable, peak: float) -> None:
  start, end = syllable.nucleus_start, syllable.end
  lo, hi = np.searchsorted(times, [start, end])
  if hi <= lo:
    return
  local = times[lo:hi]
  attack = np.clip((local - start) / _ATTACK, 0, 1)
  release = np.clip((end - local) / _RELEASE, 0, 1)
  shape = np.sin(0.5 * np.pi * np.minimum(attack, release)) ** 2
  out[lo:hi] = np.maximum(out[lo:hi], peak * shape)


def _frame_average(curve, fps: float, num_frames: int, smooth: float) -> np.ndarray:
  step = 1.0 / _FINE_RATE
  times = np.arange(0.0, num_frames / fps + step, step)
  values = curve(times)
  if smooth > 0:
    from scipy import ndimage
    values = ndimage.gaussian_filter1d(values, smooth * _FINE_RATE, mode="nearest")
  edges = np.round(np.arange(num_frames + 1) / fps * _FINE_RATE).astype(int)
  edges = np.clip(edges, 0, len(values))
  sums = np.concatenate([[0.0], np.cumsum(values)])
  counts = np.maximum(edges[1:] - edges[:-1], 1)
  return ((sums[edges[1:]] - sums[edges[:-1]]) / counts).astype(np.float32)


def sample_utterance(rng: np.random.Generator, utterance_id: str, duration: float, rate: float,
                     windows: list[tuple[float, float]] | None = None) -> Utterance:
  """Phrases of 3-9 syllables with pauses, inside `windows` (default: all but the edges)."""
  if windows is None:
    windows = [(float(rng.uniform(0.1, 0.35)), duration - float(rng.uniform(0.15, 0.4)))]
  syllables = []
  for window_start, window_end in windows:
    time = window_start
    while time < window_end:
      for _ in range(int(rng.integers(3, 10))):
        length = float(rng.uniform(0.75, 1.3)) / rate
        if time + length > window_end:
          time = window_end
          break
        syllables.append(Syllable(
            start=round(time, 4), duration=round(length, 4),
            vowel=_VOWEL_NAMES[int(rng.integers(len(_VOWEL_NAMES)))],
            consonant=CONSONANTS[int(rng.choice(len(CONSONANTS),
                                                p=(0.2, 0.3, 0.2, 0.15, 0.15)))],
            stress=round(float(rng.random() ** 2), 3)))
        time += length
      time += float(rng.uniform(0.15, 0.55))
  return Utterance(utterance_id, float(duration), tuple(syllables))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
  """Pearson r, 0 when either input is constant."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.std() < 1e-9 or b.std() < 1e-9:
    return 0.0
  return float(np.corrcoef(a, b)[0, 1])


# --------------------------------------------------------------------------- synthesis


def synthesize(utterance: Utterance, voice: Voice, sample_rate: int, seed: int) -> np.ndarray:
  """float32 speech waveform of `utterance` spoken by `voice`, peak-free level around -20 dBFS."""
  rng = np.random.default_rng(seed)
  num = int(round(utterance.duration * sample_rate))
  block = max(1, int(round(_CONTROL_SECONDS * sample_rate)))
  num_blocks = -(-num // block)
  control_t = (np.arange(num_blocks) + 0.5) * block / sample_rate
  amp = utterance.nucleus_envelope(control_t)
  formants, onset_voicing, fricative, bursts = _articulation(utterance, control_t, voice)
  voiced = np.maximum(amp, onset_voicing)
  semitones = _pitch_contour(utterance, control_t, voice, rng)
  t = np.arange(num) / sample_rate
  f0 = voice.pitch_hz * 2 ** (np.interp(t, control_t, semitones) / 12)
  source = _glottal_source(f0, sample_rate, voice, rng)
  source *= np.interp(t, control_t, voiced)
  speech = _formant_cascade(source, formants, block, sample_rate)
  noise = rng.standard_normal(num)
  hiss = signal.sosfilt(signal.butter(4, (2500, min(7500, 0.45 * sample_rate)), "bandpass",
                                      fs=sample_rate, output="sos"), noise)
  speech += 0.35 * hiss * np.interp(t, control_t, fricative)
  for time in bursts:
    start = int(time * sample_rate)
    length = min(int(0.012 * sample_rate), num - start)
    if length > 0:
      decay = np.exp(-np.arange(length) / (0.003 * sample_rate))
      speech[start:start + length] += 0.5 * rng.standard_normal(length) * decay
  active = voiced > 0.05
  level = np.sqrt(np.mean(speech ** 2 * np.repeat(active, block)[:num])
                  / max(active.mean(), 1e-3)) + 1e-9
  return (speech / level * 10 ** (-20 / 20)).astype(np.float32)


def _articulation(utterance: Utterance, control_t: np.ndarray, voice: Voice):
  """Formant targets [N, 4] (coarticulated), onset voicing, fricative noise level, bursts."""
  neutral = np.array(VOWELS["e"][0], np.float64)
  formants = np.tile(neutral, (len(control_t), 1))
  onset_voicing = np.zeros(len(control_t))
  fricative = np.zeros(len(control_t))
  bursts = []
  for syllable in utterance.syllables:
    lo, hi = np.searchsorted(control_t, [syllable.start, syllable.end])
    formants[lo:hi] = VOWELS[syllable.vowel][0]
    c_lo, c_hi = np.searchsorted(control_t, [syllable.start, syllable.nucleus_start])
    if syllable.consonant == "fricative":
      fricative[c_lo:c_hi] = 0.6 * syllable.amplitude
    elif syllable.consonant in ("nasal", "liquid"):
      onset_voicing[c_lo:c_hi] = (0.25 if syllable.consonant == "nasal" else 0.4) * (
          syllable.amplitude)
      formants[c_lo:c_hi] = (280, 1000, 2300, 3300) if syllable.consonant == "nasal" else (
          360, 1300, 1700, 3300)
    elif syllable.consonant == "plosive":
      bursts.append(syllable.nucleus_start - 0.008)
  from scipy import ndimage
  smoothing = 0.02 / _CONTROL_SECONDS
  formants = ndimage.gaussian_filter1d(formants, smoothing, axis=0, mode="nearest")
  return formants * voice.formant_scale, onset_voicing, fricative, bursts


def _pitch_contour(utterance: Utterance, control_t: np.ndarray, voice: Voice,
                   rng: np.random.Generator) -> np.ndarray:
  """Semitones relative to the voice's pitch: declination, accents, wander."""
  semitones = np.zeros(len(control_t))
  accents = np.zeros(len(control_t))
  for syllable in utterance.syllables:
    lo, hi = np.searchsorted(control_t, [syllable.start, syllable.end])
    accents[lo:hi] = voice.pitch_range * syllable.stress
  from scipy import ndimage
  accents = ndimage.gaussian_filter1d(accents, 0.06 / _CONTROL_SECONDS, mode="nearest")
  # Declination: pitch drifts down through each phrase (reset at pauses > 120 ms).
  phrase_start = 0.0
  previous_end = -1.0
  starts = []
  for syllable in utterance.syllables:
    if syllable.start - previous_end > 0.12:
      phrase_start = syllable.start
    starts.append((syllable.start, syllable.end, phrase_start))
    previous_end = syllable.end
  for start, end, phrase in starts:
    lo, hi = np.searchsorted(control_t, [start, end])
    semitones[lo:hi] = -1.2 * (control_t[lo:hi] - phrase)
  wander = np.cumsum(rng.standard_normal(len(control_t)))
  wander = ndimage.gaussian_filter1d(wander, 0.15 / _CONTROL_SECONDS)
  wander = voice.jitter * (wander - wander.mean()) / (wander.std() + 1e-9)
  return semitones + accents + wander


def _glottal_source(f0: np.ndarray, sample_rate: int, voice: Voice,
                    rng: np.random.Generator) -> np.ndarray:
  """Band-limited falling sawtooth (polyBLEP), tilted, with breath noise."""
  increment = f0 / sample_rate
  phase = np.cumsum(increment) % 1.0
  saw = 1.0 - 2.0 * phase
  # polyBLEP: smooth the discontinuity in the samples right after and before each wrap.
  after = phase < increment
  x = phase[after] / increment[after]
  saw[after] += 2 * x - x * x - 1
  before = phase > 1.0 - increment
  x = (phase[before] - 1.0) / increment[before]
  saw[before] += x * x + 2 * x + 1
  tilted = signal.lfilter([1 - voice.tilt], [1, -voice.tilt], saw)
  breath = voice.breathiness * rng.standard_normal(len(f0)) * (0.5 + 0.5 * (phase < 0.5))
  return tilted + breath


def _formant_cascade(source: np.ndarray, formants: np.ndarray, block: int,
                     sample_rate: int) -> np.ndarray:
  """Four two-pole resonators in cascade, coefficients updated every `block` samples."""
  out = source.astype(np.float64)
  nyquist = 0.5 * sample_rate
  for k, bandwidth in enumerate(_BANDWIDTHS):
    state = np.zeros(2)
    result = np.empty_like(out)
    radius = np.exp(-np.pi * bandwidth / sample_rate)
    for index in range(formants.shape[0]):
      frequency = min(formants[index, k], 0.9 * nyquist)
      b1 = 2 * radius * np.cos(2 * np.pi * frequency / sample_rate)
      b2 = -radius * radius
      gain = 1 - b1 - b2  # unity gain at DC keeps vowels at similar loudness
      lo, hi = index * block, min((index + 1) * block, len(out))
      result[lo:hi], state = signal.lfilter([gain], [1, -b1, -b2], out[lo:hi], zi=state)
    out = result
  return out


@dataclasses.dataclass(frozen=True)
class Room:
  """A recording's acoustics."""
  reverb_seconds: float  # RT60
  wet: float
  noise_db: float  # noise floor in dBFS
  hum_hz: float  # 0 (none), 50 or 60
  level_db: float  # speech RMS in dBFS

  @classmethod
  def sample(cls, rng: np.random.Generator) -> "Room":
    return cls(reverb_seconds=float(rng.uniform(0.12, 0.45)), wet=float(rng.uniform(0.05, 0.25)),
               noise_db=float(rng.uniform(-62, -46)),
               hum_hz=float(rng.choice([0.0, 0.0, 50.0, 60.0])),
               level_db=float(rng.uniform(-24, -17)))


def record(speeches: list[np.ndarray], room: Room, sample_rate: int, seed: int) -> np.ndarray:
  """Mixes speech tracks as heard in `room`: level, reverb, noise floor, hum; clipped to [-1, 1]."""
  rng = np.random.default_rng(seed)
  num = max(len(s) for s in speeches)
  dry = np.zeros(num)
  for speech in speeches:
    dry[:len(speech)] += speech * 10 ** ((room.level_db + 20) / 20)
  length = int(room.reverb_seconds * sample_rate)
  impulse = rng.standard_normal(length) * np.exp(-6.9 * np.arange(length) / max(length, 1))
  impulse /= np.sqrt(np.sum(impulse ** 2)) + 1e-9
  wet = signal.fftconvolve(dry, impulse)[:num]
  mix = (1 - room.wet) * dry + room.wet * wet
  noise = rng.standard_normal(num)
  noise = signal.lfilter([1.0], [1.0, -0.95], noise)  # brownish room noise
  noise *= 10 ** (room.noise_db / 20) / (noise.std() + 1e-9)
  mix += noise
  if room.hum_hz:
    t = np.arange(num) / sample_rate
    mix += 10 ** ((room.noise_db + 4) / 20) * np.sin(2 * np.pi * room.hum_hz * t)
  return np.clip(mix, -1.0, 1.0).astype(np.float32)
