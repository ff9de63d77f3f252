"""Fakes derived from real recordings, with their ground truth.

Manipulation kinds (what is done), independent of how a layout names them:

=============  ==========================================================================
kind           face / mouth / audio of the manipulated person (person 0)
=============  ==========================================================================
rvfa           real face and mouth; audio: a new utterance in another identity's voice
swap_sharp     donor face, graphics swap (target's shape); original motion and audio
swap_soft      donor face, autoencoder-like swap (donor's shape, 64-px, flickering)
lipsync        real face; mouth driven by a new utterance that is NOT played (Wav2Lip-like
               lower-face re-render); original audio
fvfa_sharp     swap_sharp + new audio in another voice + lower face re-rendered to follow it
fvfa_soft      swap_soft + the same
fvfa_lipsync   real face + new audio in another voice + lower face re-rendered to follow it
drift          the face morphs from the identity towards another one during the video
reenact_face   (FF++ only) expressions, blinks and audio of the source video, face re-rendered
reenact_mouth  (FF++ only) mouth and audio of the source video, mouth region re-rendered
=============  ==========================================================================

Where the played audio and the visible mouth come from different utterances (rvfa,
lipsync), the new utterance is drawn until the frame-wise RMS of the rendered soundtrack is
uncorrelated (|r| < 0.05) with the mouth opening shown, so the mismatch is unambiguous even in
a 2-second clip, where two independent utterances correlate by chance with r of +-0.2;
re-rendered mouths that follow new audio lag it by one frame, as lip-sync generators do.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from data.synth import identities as identities_lib
from data.synth import plan as plan_lib
from data.synth import soundtrack
from data.synth import voice as voice_lib

KINDS = ("rvfa", "swap_sharp", "swap_soft", "lipsync", "fvfa_sharp", "fvfa_soft",
         "fvfa_lipsync", "drift", "reenact_face", "reenact_mouth")
DECORRELATION_THRESHOLD = 0.05
_DECORRELATION_TRIES = 80


@dataclasses.dataclass(frozen=True)
class Video:
  """A video to render (real or fake) with everything the ground truth records about it."""
  key: str
  real: plan_lib.RealVideo
  kind: str  # 'real' or one of KINDS
  plan: plan_lib.VideoPlan
  face_donor: str | None = None  # identity whose face is blended in or morphed towards
  voice_donor: str | None = None  # identity whose voice replaces person 0's
  mouth_donor: str | None = None  # identity whose (new) utterance drives person 0's mouth
  source_video: plan_lib.RealVideo | None = None  # FF++ source of a swap or reenactment

  @property
  def label(self) -> int:
    return 0 if self.kind == "real" else 1

  @property
  def person(self) -> plan_lib.PersonPlan:
    return self.plan.people[0]


def real_video(real: plan_lib.RealVideo) -> Video:
  return Video(key=real.plan.key, real=real, kind="real", plan=real.plan)


def make_fake(real: plan_lib.RealVideo, kind: str,
              recipes: dict[str, identities_lib.IdentityRecipe], seed: int, salt: int,
              source: plan_lib.RealVideo | None = None) -> Video:
  """The fake of `kind` made from `real`; donors come from `source` or the real's split."""
  if kind not in KINDS:
    raise ValueError(f"unknown fake kind {kind!r}; expected one of {KINDS}")
  rng = plan_lib.rng_for(seed, 0xFA, real.index, KINDS.index(kind), salt)
  plan = real.plan
  person = plan.people[0]
  key = f"{plan.key}-{kind}-{salt}"
  fps, frames, duration = float(plan.fps), plan.num_frames, plan.duration
  # Donors come from the real's split (held-out identities never leak into training fakes),
  # preferably not someone already in the video.
  split_mates = sorted(i for i, r in recipes.items() if r.split == real.split
                       and i != real.identity)
  same_split = [i for i in split_mates if all(i != p.identity for p in plan.people)]
  same_split = same_split or split_mates
  if not same_split:
    raise ValueError(f"{real.identity} is alone in the {real.split} split; every split needs "
                     "two identities")

  def pick() -> str:
    return same_split[int(rng.integers(len(same_split)))]

  face_donor = voice_donor = mouth_donor = None
  if source is not None:
    face_donor = source.plan.people[0].identity
  new_person = dataclasses.replace(person, manipulation_seed=int(rng.integers(2**31)))
  speech = list(plan.speech)

  def new_voice_track(windows) -> plan_lib.SpeechTrack:
    donor = pick()
    voice = recipes[donor].voice
    utterance = voice_lib.sample_utterance(rng, f"{key}-audio", duration, voice.rate, windows)
    return plan_lib.SpeechTrack(utterance, voice, donor, int(rng.integers(2**31)))

  turns = _windows_of(person.mouth) if len(plan.people) > 1 else None
  if kind == "rvfa":
    # The new audio is drawn until its loudness, as rendered, is uncorrelated with the mouth.
    mouth = person.mouth.mouth_track(fps, frames)

    def audio_mismatch(track: plan_lib.SpeechTrack) -> float:
      # Cheap screen on the utterance's own loudness, then the rendered soundtrack.
      proxy = _mismatch(mouth, track.utterance.loudness_track(fps, frames))
      if proxy > 2 * DECORRELATION_THRESHOLD:
        return 1.0 + proxy
      candidate = dataclasses.replace(plan, speech=(track,) + tuple(speech[1:]))
      return _mismatch(mouth, soundtrack.frame_rms(soundtrack.render_audio(candidate), fps,
                                                   frames))

    track = _least(lambda: new_voice_track(turns), audio_mismatch)
    speech[0], voice_donor = track, track.speaker
  elif kind in ("swap_sharp", "swap_soft"):
    face_donor = face_donor or pick()
    new_person = dataclasses.replace(new_person, face_donor=face_donor,
                                     swap_engine=kind.split("_")[1])
  elif kind == "lipsync":
    # The new mouth is drawn until it is uncorrelated with the loudness of the real audio.
    loudness = soundtrack.frame_rms(soundtrack.render_audio(plan), fps, frames)
    driver = pick()
    rate = recipes[driver].voice.rate
    mouth = _least(
        lambda: voice_lib.sample_utterance(rng, f"{key}-mouth", duration, rate, turns),
        lambda u: _mismatch(u.mouth_track(fps, frames), loudness))
    new_person = dataclasses.replace(new_person, mouth=mouth, rerender="lower_face")
    mouth_donor, face_donor = driver, None
  elif kind in ("fvfa_sharp", "fvfa_soft", "fvfa_lipsync"):
    track = new_voice_track(turns)
    speech[0], voice_donor = track, track.speaker
    mouth_donor = track.speaker
    new_person = dataclasses.replace(new_person, mouth=track.utterance, rerender="lower_face",
                                     mouth_lag=1)
    if kind != "fvfa_lipsync":
      face_donor = pick()
      new_person = dataclasses.replace(new_person, face_donor=face_donor,
                                       swap_engine=kind.split("_")[1])
  elif kind == "drift":
    face_donor = face_donor or pick()
    schedule = (0.0, float(rng.uniform(0.6, 0.9)), float(rng.uniform(0.1, 0.35)) * duration,
                float(rng.uniform(0.65, 0.95)) * duration)
    new_person = dataclasses.replace(new_person, face_donor=face_donor, drift=schedule)
  else:  # reenactment: the source video's expressions (and its audio, as FakeOut enriched)
    if source is None:
      raise ValueError(f"{kind} needs a source video (FaceForensics++ pairs)")
    driver = source.plan.people[0]
    mouth = _fit_utterance(driver.mouth, duration, driver.mouth.utterance_id)
    new_person = dataclasses.replace(new_person, mouth=mouth,
                                     rerender="face" if kind == "reenact_face" else "mouth")
    if kind == "reenact_face":
      new_person = dataclasses.replace(new_person, blinks=driver.blinks)
    speech = [dataclasses.replace(track, utterance=_fit_utterance(track.utterance, duration,
                                                                  track.utterance.utterance_id))
              for track in source.plan.speech]
    voice_donor = mouth_donor = source.plan.speech[0].speaker
    face_donor = None
    plan = dataclasses.replace(plan, room=source.plan.room, audio_seed=source.plan.audio_seed)
  people = (new_person,) + tuple(plan.people[1:])
  plan = dataclasses.replace(plan, key=key, people=people, speech=tuple(speech))
  return Video(key=key, real=real, kind=kind, plan=plan, face_donor=face_donor,
               voice_donor=voice_donor, mouth_donor=mouth_donor, source_video=source)


def _windows_of(utterance: voice_lib.Utterance) -> list[tuple[float, float]]:
  """Speaking windows (turns) of an utterance: runs of syllables without long pauses."""
  windows = []
  for syllable in utterance.syllables:
    if windows and syllable.start - windows[-1][1] < 0.6:
      windows[-1] = (windows[-1][0], syllable.end)
    else:
      windows.append((syllable.start, syllable.end))
  return windows or [(0.2, max(0.2, utterance.duration - 0.2))]


def _mismatch(mouth: np.ndarray, loudness: np.ndarray) -> float:
  """How far from unrelated a mouth track and a loudness track are (0 = unrelated).

  Lip measurements (e.g. FaceMesh's inner-lip gap) grow about like the square root of the
  rendered opening: they saturate when the mouth is closed, which weights speech ON/OFF more
  than loudness. Two utterances share ON/OFF structure (silent lead-in and tail), so only a
  draw that is unrelated in both the linear and the square-root sense stays unrelated when
  measured (|r| of about 0.1 otherwise).
  """
  return max(abs(voice_lib.correlation(mouth, loudness)),
             abs(voice_lib.correlation(np.sqrt(np.maximum(mouth, 0)), loudness)))


def _least(draw, mismatch):
  """The first of up to `_DECORRELATION_TRIES` draws with mismatch below the threshold, else
  the lowest."""
  best, best_score = None, np.inf
  for _ in range(_DECORRELATION_TRIES):
    candidate = draw()
    score = mismatch(candidate)
    if score < best_score:
      best, best_score = candidate, score
    if score < DECORRELATION_THRESHOLD:
      break
  return best


def _fit_utterance(utterance: voice_lib.Utterance, duration: float,
                   utterance_id: str) -> voice_lib.Utterance:
  """`utterance` cut (or left with silence) to `duration` seconds."""
  kept = tuple(s for s in utterance.syllables if s.end <= duration)
  return voice_lib.Utterance(utterance_id, float(duration), kept)
