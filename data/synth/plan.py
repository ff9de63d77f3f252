"""What a synthetic video is made of: a small, picklable description rendered by `render.py`.

A real video's plan is drawn from the seed (`real_plans`); a fake's plan is the real plan with
one or more parts replaced (`fakes.py`), so a fake shares its real's resolution, frame rate,
length, background, head motion, blinks and room: nothing global tells them apart.
"""
from __future__ import annotations

import dataclasses
import math
import string
from fractions import Fraction

import numpy as np

from data.synth import identities as identities_lib
from data.synth import photos
from data.synth import voice as voice_lib

# Frame rates between 24 and 30 fps, as found in the real datasets (NTSC 29.97 included).
FRAME_RATES = (Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30))
# (width, height, weight): 240p to 720p in 16:9, 4:3 and square (FakeAVCeleb is mostly square).
RESOLUTIONS = ((426, 240, 2), (320, 240, 1), (240, 240, 1), (640, 360, 2), (480, 360, 1),
               (360, 360, 1), (854, 480, 2), (640, 480, 1), (480, 480, 1), (1280, 720, 1),
               (960, 720, 1), (720, 720, 1))
TWO_PERSON_FRACTION = 0.12
# Smallest forehead-to-chin height in pixels: low-resolution videos show the face larger, as
# face-centred low-resolution datasets do, so lips stay measurable (about 14 px of mouth).
MIN_FACE_PIXELS = {1: 100, 2: 80}
_YOUTUBE_ALPHABET = string.ascii_letters + string.digits + "-_"


@dataclasses.dataclass(frozen=True)
class Motion:
  """Smooth head motion: sums of sinusoids for roll (degrees), shift (face heights), zoom."""
  roll: float
  shift_x: float
  shift_y: float
  zoom: float
  frequencies: tuple[float, ...]  # 9 frequencies (Hz): 3 per component pair
  phases: tuple[float, ...]  # 12 phases

  @classmethod
  def sample(cls, rng: np.random.Generator) -> "Motion":
    return cls(roll=float(rng.uniform(1.0, 4.0)), shift_x=float(rng.uniform(0.02, 0.08)),
               shift_y=float(rng.uniform(0.01, 0.05)), zoom=float(rng.uniform(0.01, 0.05)),
               frequencies=tuple(float(f) for f in rng.uniform(0.08, 0.7, 12)),
               phases=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 12)))

  def at(self, time: float) -> tuple[float, float, float, float]:
    """(roll degrees, shift x, shift y in face heights, zoom factor) at `time` seconds."""
    f, p = self.frequencies, self.phases
    waves = [np.mean([np.sin(2 * np.pi * f[3 * k + j] * time + p[3 * k + j]) for j in range(3)])
             for k in range(4)]
    return (self.roll * waves[0], self.shift_x * waves[1], self.shift_y * waves[2],
            1.0 + self.zoom * waves[3])


@dataclasses.dataclass(frozen=True)
class PersonPlan:
  """One face in a video and, for fakes, what was done to it."""
  identity: str
  mouth: voice_lib.Utterance  # the utterance that drives this face's mouth
  blinks: tuple[tuple[float, float], ...]  # (start, duration) in seconds
  motion: Motion
  center: tuple[float, float]  # face centre in the frame (fractions of width, height)
  face_height: float  # forehead-to-chin height as a fraction of the frame height
  # Manipulation (None everywhere for a real face).
  face_donor: str | None = None  # identity whose face is blended in (swap) or morphed to (drift)
  swap_engine: str | None = None  # 'sharp' (graphics swap) or 'soft' (autoencoder-like swap)
  drift: tuple[float, float, float, float] | None = None  # (w_start, w_end, t_start, t_end)
  rerender: str | None = None  # 'lower_face' (wav2lip), 'mouth' (NeuralTextures), 'face' (F2F)
  mouth_lag: int = 0  # frames the mouth lags its driving utterance
  manipulation_seed: int = 0


@dataclasses.dataclass(frozen=True)
class SpeechTrack:
  utterance: voice_lib.Utterance
  voice: voice_lib.Voice
  speaker: str  # identity whose voice this is
  seed: int


@dataclasses.dataclass(frozen=True)
class Scene:
  """Background photo and camera/lighting behaviour of a recording."""
  background: str
  background_seed: int
  blur: float  # background blur in fractions of the frame height
  tint: tuple[float, float, float]  # CIELAB shift of the background
  shake: float  # camera shake amplitude in fractions of the frame height
  light_gradient: float  # amplitude of the moving light gradient across a face
  exposure_drift: float  # amplitude of slow exposure / white-balance drift
  seed: int


@dataclasses.dataclass(frozen=True)
class VideoPlan:
  key: str
  fps: Fraction
  width: int
  height: int
  num_frames: int
  people: tuple[PersonPlan, ...]
  speech: tuple[SpeechTrack, ...]
  room: voice_lib.Room
  scene: Scene
  audio_seed: int

  @property
  def duration(self) -> float:
    return self.num_frames / float(self.fps)


@dataclasses.dataclass(frozen=True)
class RealVideo:
  """A real recording of one identity (plus, sometimes, a second person)."""
  index: int
  identity: str
  clip: str  # 5-digit clip number, as FakeAVCeleb's 00109
  youtube_id: str  # 11-character id, as in FakeAVCeleb's fake file names
  split: str
  plan: VideoPlan


def rng_for(seed: int, *keys: int) -> np.random.Generator:
  return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def real_plans(recipes: list[identities_lib.IdentityRecipe], videos_per_identity: int,
               seed: int, min_seconds: float, max_seconds: float,
               max_height: int = 720) -> list[RealVideo]:
  """Deterministic real recordings: `videos_per_identity` for each identity."""
  by_split: dict[str, list[str]] = {}
  for recipe in recipes:
    by_split.setdefault(recipe.split, []).append(recipe.identity_id)
  resolutions = [r for r in RESOLUTIONS if r[1] <= max_height]
  count = len(recipes) * videos_per_identity
  rng = rng_for(seed, 0x2E)
  two_person = set()
  if count >= 3:
    two_person = set(rng.choice(count, math.ceil(TWO_PERSON_FRACTION * count),
                                replace=False).tolist())
  reals = []
  for recipe in recipes:
    clip_rng = rng_for(seed, 0xC1, recipe.index)
    clips = sorted(clip_rng.choice(np.arange(1, 400), videos_per_identity, replace=False))
    for number, clip in enumerate(clips):
      index = recipe.index * videos_per_identity + number
      partners = [i for i in by_split[recipe.split] if i != recipe.identity_id]
      partner = None
      if index in two_person and partners:
        partner = partners[int(rng_for(seed, 0x2F, index).integers(len(partners)))]
      plan = _sample_plan(rng_for(seed, 0x3A, index), f"real{index:05d}", recipes, recipe,
                          partner, resolutions, min_seconds, max_seconds)
      reals.append(RealVideo(index=index, identity=recipe.identity_id, clip=f"{clip:05d}",
                             youtube_id=_youtube_id(rng_for(seed, 0x7D, index)),
                             split=recipe.split, plan=plan))
  return reals


def _youtube_id(rng: np.random.Generator) -> str:
  return "".join(_YOUTUBE_ALPHABET[i] for i in rng.integers(len(_YOUTUBE_ALPHABET), size=11))


def _sample_plan(rng: np.random.Generator, key: str, recipes, recipe, partner: str | None,
                 resolutions, min_seconds: float, max_seconds: float) -> VideoPlan:
  by_id = {r.identity_id: r for r in recipes}
  fps = FRAME_RATES[int(rng.integers(len(FRAME_RATES)))]
  weights = np.array([r[2] for r in resolutions], np.float64)
  width, height, _ = resolutions[int(rng.choice(len(resolutions), p=weights / weights.sum()))]
  if partner is not None and width < 1.7 * height:  # two people need a 16:9 frame
    wide = [(w, h) for w, h, _ in resolutions if w >= 1.7 * h and h == height]
    if wide:
      width, height = wide[0]
  seconds = float(rng.uniform(min_seconds, max_seconds))
  num_frames = max(int(round(seconds * float(fps))), 2)
  duration = num_frames / float(fps)
  speakers = [recipe.identity_id] + ([partner] if partner else [])
  windows = _turns(rng, duration, len(speakers))
  people, speech = [], []
  for slot, speaker in enumerate(speakers):
    voice = by_id[speaker].voice
    utterance = voice_lib.sample_utterance(rng, f"{key}-p{slot}", duration, voice.rate,
                                           windows[slot])
    if partner is None:
      center = (float(rng.uniform(0.42, 0.58)), float(rng.uniform(0.42, 0.5)))
      face_height = float(rng.uniform(0.3, 0.48))
    else:
      center = (0.28 + 0.44 * slot + float(rng.uniform(-0.02, 0.02)),
                float(rng.uniform(0.4, 0.48)))
      face_height = float(rng.uniform(0.24, 0.3))
    face_height = min(max(face_height, MIN_FACE_PIXELS[len(speakers)] / height), 0.55)
    people.append(PersonPlan(identity=speaker, mouth=utterance, blinks=_blinks(rng, duration),
                             motion=Motion.sample(rng), center=center,
                             face_height=face_height))
    speech.append(SpeechTrack(utterance, voice, speaker, int(rng.integers(2**31))))
  scene = Scene(background=photos.background_names()[int(rng.integers(
      len(photos.background_names())))],
                background_seed=int(rng.integers(2**31)), blur=float(rng.uniform(0.004, 0.012)),
                tint=(float(rng.uniform(-20, 10)), float(rng.uniform(-12, 12)),
                      float(rng.uniform(-12, 12))),
                shake=float(rng.uniform(0.0, 0.008)), light_gradient=float(rng.uniform(0.05, 0.2)),
                exposure_drift=float(rng.uniform(0.02, 0.07)), seed=int(rng.integers(2**31)))
  return VideoPlan(key=key, fps=fps, width=width, height=height, num_frames=num_frames,
                   people=tuple(people), speech=tuple(speech), room=voice_lib.Room.sample(rng),
                   scene=scene, audio_seed=int(rng.integers(2**31)))


def _turns(rng: np.random.Generator, duration: float, speakers: int):
  """Speaking windows per speaker: one speaker talks throughout; two alternate turns."""
  lead, tail = float(rng.uniform(0.1, 0.35)), float(rng.uniform(0.15, 0.4))
  if speakers == 1:
    return [[(lead, max(lead, duration - tail))]]
  turns: list[list[tuple[float, float]]] = [[], []]
  time, who = lead, int(rng.integers(2))
  while time < duration - tail - 0.3:
    length = float(rng.uniform(0.8, 2.2))
    end = min(time + length, duration - tail)
    turns[who].append((time, end))
    time, who = end + float(rng.uniform(0.2, 0.5)), 1 - who
  return turns


def _blinks(rng: np.random.Generator, duration: float) -> tuple[tuple[float, float], ...]:
  """Blinks as a Poisson process (about one every 2-5 s), each 0.15-0.3 s long."""
  rate = float(rng.uniform(0.2, 0.5))
  blinks, time = [], float(rng.exponential(1 / rate)) * 0.5
  while time < duration - 0.3:
    length = float(rng.uniform(0.15, 0.3))
    blinks.append((round(time, 4), round(length, 4)))
    time += length + float(rng.exponential(1 / rate)) + 0.3
  return tuple(blinks)


def closure_at(blinks: tuple[tuple[float, float], ...], time: float) -> float:
  """Eyelid closure in [0, 1] at `time`: fast close (40%), slower reopening (60%)."""
  for start, length in blinks:
    if start <= time <= start + length:
      phase = (time - start) / length
      return phase / 0.4 if phase < 0.4 else (1 - phase) / 0.6
  return 0.0
