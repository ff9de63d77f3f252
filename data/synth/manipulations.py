"""Per-frame face rendering of one person, real or manipulated, on the portrait canvas.

Manipulations imitate the artefacts of the methods they stand for, at the scale they have:

* swap 'soft' (autoencoder swaps: FF++ Deepfakes, FakeAVCeleb fsgan): the donor's face,
  similarity-aligned (it keeps the donor's inner geometry), generated at low resolution
  (64 px), colour-matched, blended with a wide feathered mask; its strength and alignment
  flicker from frame to frame, so identity is not perfectly stable over time.
* swap 'sharp' (graphics swaps: FF++ FaceSwap, FakeAVCeleb faceswap): the donor's texture
  warped piecewise-affinely onto the target's posed mesh (the target's shape), partly
  colour-corrected, blended with a narrow mask; landmark jitter makes the texture swim.
* drift: the face morphs from the video's identity towards another one during the video.
* re-rendering: 'lower_face' (Wav2Lip: lower half regenerated at 96-px scale), 'mouth'
  (NeuralTextures: mouth region re-rendered blurry), 'face' (Face2Face: whole face
  re-synthesised smoother); the mouth itself follows the plan's driving utterance.

Every swapped or morphed donor face is rendered with the same mouth opening and blinks as the
target, so the original motion (and lip sync) is kept.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from data.synth import identities
from data.synth import photos
from data.synth import plan as plan_lib
from data.synth import warp

SOFT_SWAP_RESOLUTION = 64
WAV2LIP_FACE = 96  # Wav2Lip generates 96x96 faces; the lower half is pasted back
DRIFT_KEYFRAMES = 5


def smooth_noise(rng: np.random.Generator, count: int, correlation_frames: float) -> np.ndarray:
  """Zero-mean, unit-std noise correlated over about `correlation_frames` frames."""
  noise = rng.standard_normal(count + 8)
  if correlation_frames > 0:
    noise = ndimage.gaussian_filter1d(noise, correlation_frames, mode="wrap")
  noise = noise[4:4 + count]
  return (noise - noise.mean()) / (noise.std() + 1e-9)


class PersonRenderer:
  """The canvas (RGB) and matte of one person for every frame of a video."""

  def __init__(self, person: plan_lib.PersonPlan, bank: identities.IdentityBank, fps: float,
               num_frames: int):
    self.person = person
    self.portrait = bank.portrait(person.identity)
    self.alpha = np.round(self.portrait.alpha * 255).astype(np.uint8)
    mouth = person.mouth.mouth_track(fps, num_frames)
    if person.mouth_lag:
      mouth = np.concatenate([np.zeros(person.mouth_lag, np.float32), mouth])[:num_frames]
    self.mouth = mouth
    self.closure = np.array([plan_lib.closure_at(person.blinks, (i + 0.5) / fps)
                             for i in range(num_frames)], np.float32)
    rng = np.random.default_rng(person.manipulation_seed)
    self._swap = None
    self._drift = None
    if person.swap_engine:
      self._swap = _Swap(self.portrait, bank.portrait(person.face_donor), person.swap_engine, rng,
                         num_frames)
    if person.drift:
      self._drift = _Drift(self.portrait, bank.portrait(person.face_donor), person.drift, fps)
    self._rerender = _Rerender(self.portrait, person.rerender) if person.rerender else None

  def frame(self, index: int) -> np.ndarray:
    opening, closure = float(self.mouth[index]), float(self.closure[index])
    if self._drift is not None:
      canvas = self._drift.render(index, opening, closure)
    else:
      canvas = self.portrait.rig.render(self.portrait.rgb, opening, closure)
    if self._swap is not None:
      canvas = self._swap.apply(canvas, index, opening, closure)
    if self._rerender is not None:
      canvas = self._rerender.apply(canvas)
    return canvas


class _Swap:

  def __init__(self, target: identities.Portrait, donor: identities.Portrait, engine: str,
               rng: np.random.Generator, num_frames: int):
    if engine not in ("soft", "sharp"):
      raise ValueError(f"unknown swap engine {engine!r}; expected 'soft' or 'sharp'")
    self.target, self.donor, self.engine = target, donor, engine
    height = target.rig.face_height
    self.mask = identities.face_mask(target.landmarks, target.alpha.shape,
                                     shrink=0.9 if engine == "soft" else 0.97,
                                     feather=0.05 if engine == "soft" else 0.012)
    ys, xs = np.nonzero(self.mask > 0.01)
    self.roi = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    self.alignment = warp.fit_similarity(donor.landmarks, target.landmarks)
    self.triangles = warp.triangulate(target.landmarks)
    jitter = 0.6 if engine == "soft" else 0.3
    self.jitter = jitter * np.stack([smooth_noise(rng, num_frames, 0.7),
                                     smooth_noise(rng, num_frames, 0.7)], 1)
    self.strength = (np.clip(0.9 + 0.07 * smooth_noise(rng, num_frames, 4.0), 0.75, 1.0)
                     if engine == "soft" else np.ones(num_frames))
    # Colour statistics of the neutral faces, for a Reinhard transfer in CIELAB.
    neutral_donor = self._place(donor.rgb, donor.landmarks, target.landmarks, np.zeros(2))
    inside = self.mask > 0.5
    self._stats = (_lab_stats(neutral_donor, inside), _lab_stats(target.rgb, inside))
    self._colour_amount = 1.0 if engine == "soft" else 0.6
    self.scale = height

  def _place(self, donor_rgb: np.ndarray, donor_points: np.ndarray, target_points: np.ndarray,
             shift: np.ndarray) -> np.ndarray:
    """The donor's face put onto the target canvas inside `roi` (zeros elsewhere)."""
    x0, y0, x1, y1 = self.roi
    out = np.zeros_like(self.target.rgb)
    if self.engine == "soft":
      matrix = self.alignment.copy()
      matrix[:, 2] += shift - [x0, y0]
      out[y0:y1, x0:x1] = cv2.warpAffine(donor_rgb, matrix, (x1 - x0, y1 - y0),
                                         flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REPLICATE)
    else:
      map_x, map_y = warp.piecewise_affine_maps(donor_points, target_points + shift,
                                                self.triangles, self.roi)
      out[y0:y1, x0:x1] = cv2.remap(donor_rgb, map_x, map_y, cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
    return out

  def apply(self, canvas: np.ndarray, index: int, opening: float, closure: float) -> np.ndarray:
    donor_rig, target_rig = self.donor.rig, self.target.rig
    donor_rgb = donor_rig.render(self.donor.rgb, opening, closure)
    donor_points = donor_rig.pose(opening, closure)[:photos.NUM_MESH_POINTS]
    target_points = target_rig.pose(opening, closure)[:photos.NUM_MESH_POINTS]
    placed = self._place(donor_rgb, donor_points, target_points, self.jitter[index])
    x0, y0, x1, y1 = self.roi
    face = placed[y0:y1, x0:x1]
    if self.engine == "soft":
      small_h = SOFT_SWAP_RESOLUTION
      small_w = max(8, int(round(small_h * (x1 - x0) / (y1 - y0))))
      face = cv2.resize(cv2.resize(face, (small_w, small_h), interpolation=cv2.INTER_AREA),
                        (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    face = _transfer_colour(face, *self._stats, self._colour_amount)
    weight = (self.strength[index] * self.mask[y0:y1, x0:x1])[..., None]
    out = canvas.copy()
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(region + (face - region) * weight, 0, 255).astype(np.uint8)
    return out


class _Drift:
  """Identity drift: a morph from the target towards the donor with a weight schedule."""

  def __init__(self, target: identities.Portrait, donor: identities.Portrait,
               schedule: tuple[float, float, float, float], fps: float):
    self.w_start, self.w_end, self.t_start, self.t_end = schedule
    self.fps = fps
    self.weights = np.linspace(self.w_start, self.w_end, DRIFT_KEYFRAMES)
    self.keyframes = [identities.morph_toward(target, donor, float(w)) for w in self.weights]

  def weight_at(self, time: float) -> float:
    span = max(self.t_end - self.t_start, 1e-6)
    phase = np.clip((time - self.t_start) / span, 0, 1)
    phase = phase * phase * (3 - 2 * phase)  # smoothstep
    return float(self.w_start + (self.w_end - self.w_start) * phase)

  def render(self, index: int, opening: float, closure: float) -> np.ndarray:
    weight = self.weight_at((index + 0.5) / self.fps)
    position = np.interp(weight, self.weights, np.arange(len(self.weights)))
    lower = int(np.floor(position))
    upper = min(lower + 1, len(self.keyframes) - 1)
    blend = position - lower
    first = self.keyframes[lower]
    canvas = first.rig.render(first.rgb, opening, closure)
    if upper != lower and blend > 1e-3:
      second = self.keyframes[upper]
      other = second.rig.render(second.rgb, opening, closure)
      canvas = cv2.addWeighted(canvas, 1 - blend, other, blend, 0)
    return canvas


class _Rerender:
  """Re-synthesised face regions: lower face (Wav2Lip), mouth (NeuralTextures), face (F2F)."""

  def __init__(self, portrait: identities.Portrait, region: str):
    points, shape = portrait.landmarks, portrait.alpha.shape
    height = portrait.rig.face_height
    mask = np.zeros(shape, np.float32)
    if region == "lower_face":
      top = points[photos.NOSE_TIP, 1] + 0.03 * height
      bottom = points[photos.CHIN, 1] + 0.06 * height
      left, right = points[172, 0] - 0.03 * height, points[397, 0] + 0.03 * height
      cv2.rectangle(mask, (int(left), int(top)), (int(right), int(bottom)), 1.0, -1)
      mask = cv2.GaussianBlur(mask, (0, 0), 0.02 * height)
      self.factor = (bottom - points[photos.FOREHEAD, 1]) / WAV2LIP_FACE
    elif region == "mouth":
      center = (points[13] + points[14]) / 2
      half_width = abs(points[291, 0] - points[61, 0]) / 2
      cv2.ellipse(mask, (int(center[0]), int(center[1])),
                  (int(1.6 * half_width), int(0.17 * height)), 0, 0, 360, 1.0, -1)
      mask = cv2.GaussianBlur(mask, (0, 0), 0.025 * height)
      self.factor = 3.0
    elif region == "face":
      mask = identities.face_mask(points, shape, shrink=0.95, feather=0.03)
      self.factor = 1.0
    else:
      raise ValueError(f"unknown re-render region {region!r}")
    self.region = region
    self.mask = mask
    ys, xs = np.nonzero(mask > 0.01)
    self.roi = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)

  def apply(self, canvas: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = self.roi
    patch = canvas[y0:y1, x0:x1]
    if self.region == "face":
      # Re-synthesised skin: smoother, slightly flatter shading (a model's texture).
      made = cv2.bilateralFilter(patch, 5, 18, 3)
      made = cv2.addWeighted(made, 0.94, cv2.GaussianBlur(made, (0, 0), 6), 0.06, 0)
    else:
      width, height = x1 - x0, y1 - y0
      small = (max(4, int(round(width / self.factor))), max(4, int(round(height / self.factor))))
      made = cv2.resize(cv2.resize(patch, small, interpolation=cv2.INTER_AREA), (width, height),
                        interpolation=cv2.INTER_CUBIC)
    weight = self.mask[y0:y1, x0:x1, None]
    out = canvas.copy()
    out[y0:y1, x0:x1] = np.clip(patch + (made.astype(np.float32) - patch) * weight, 0,
                                255).astype(np.uint8)
    return out


def _lab_stats(rgb: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)[inside]
  return lab.mean(axis=0), lab.std(axis=0) + 1e-3


def _transfer_colour(rgb: np.ndarray, source_stats, target_stats, amount: float) -> np.ndarray:
  lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
  (source_mean, source_std), (target_mean, target_std) = source_stats, target_stats
  matched = (lab - source_mean) * (target_std / source_std) + target_mean
  lab = lab + amount * (matched - lab)
  return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
