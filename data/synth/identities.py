"""Synthetic identities: real portraits widened by landmark-based morphing and colour changes.

Every identity lives on a portrait canvas (`CANVAS_WIDTH` x `CANVAS_HEIGHT`, face upright,
forehead-to-chin `CANVAS_FACE_HEIGHT` pixels, centred at `CANVAS_FACE_CENTER`) with a soft
person matte, so the renderer can move it over any background. An identity is:

1. a base portrait (astronaut or grace_hopper, either side up to a mirror);
2. its face SHAPE pulled towards one of the 100 LFW faces (`shape_weight` of the way, after a
   least-squares similarity alignment of the two meshes) and, for some, morphed with the other
   base portrait (`portrait_weight`), then warped piecewise-affinely with the lips closed;
3. the low-frequency luminance of an LFW face blended into the inner face
   (`appearance_weight`): brows, eye sockets, cheek and beard shading, at the resolution LFW
   actually has, while the sharp skin texture stays the portrait's;
4. a skin-tone shift inside the face and neck and a hue/brightness change of hair and clothes.

Identities are split into train / val / test by identity; fakes only borrow faces and voices
from the same split, so held-out identities stay unseen in training.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Mapping

import cv2
import numpy as np
from scipy import ndimage

from data.synth import photos
from data.synth import rig
from data.synth import voice as voice_lib
from data.synth import warp

log = logging.getLogger(__name__)

CANVAS_WIDTH, CANVAS_HEIGHT = 448, 640
CANVAS_FACE_HEIGHT = 172.0
CANVAS_FACE_CENTER = (224.0, 200.0)
_FOREHEAD_TARGET = (CANVAS_FACE_CENTER[0], CANVAS_FACE_CENTER[1] - CANVAS_FACE_HEIGHT / 2)
_CHIN_TARGET = (CANVAS_FACE_CENTER[0], CANVAS_FACE_CENTER[1] + CANVAS_FACE_HEIGHT / 2)
LOWPASS_SIGMA = 0.028  # appearance transfer below this scale (x face height): LFW's resolution

# FakeAVCeleb's folder values. Assigned round-robin as folder labels only: they make the tree
# look like the release and say nothing about the synthetic faces.
RACES = ("African", "Asian (East)", "Asian (South)", "Caucasian (American)",
         "Caucasian (European)")
GENDERS = ("men", "women")
SPLITS = ("train", "val", "test")
DEFAULT_VAL_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class IdentityRecipe:
  """Everything that defines one identity; small, picklable, written to the ground truth."""
  identity_id: str
  index: int
  split: str
  gender: str
  race: str
  base: str
  shape_donor: str
  shape_weight: float
  appearance_donor: str
  appearance_weight: float
  portrait_weight: float  # morph towards the other base portrait (0 = none)
  skin_shift: tuple[float, float, float]  # (L, a, b) added in CIELAB inside face and neck
  clothes_hue: float  # degrees of (a, b) rotation for hair and clothes
  clothes_gain: float
  skin_smoothing: float  # 0 keeps the portrait's skin texture (wrinkles, pores), 1 smooths it
  voice: voice_lib.Voice

  def describe(self) -> str:
    parts = [f"base={self.base}", f"shape={self.shape_donor}@{self.shape_weight:.2f}",
             f"appearance={self.appearance_donor}@{self.appearance_weight:.2f}"]
    if self.portrait_weight:
      parts.append(f"portrait_morph={self.portrait_weight:.2f}")
    parts.append("skin_lab=({:+.1f},{:+.1f},{:+.1f})".format(*self.skin_shift))
    parts.append(f"smoothing={self.skin_smoothing:.2f}")
    parts.append(f"hair_clothes=hue{self.clothes_hue:+.0f},gain{self.clothes_gain:.2f}")
    return " ".join(parts)


@dataclasses.dataclass
class Portrait:
  """Pixels, matte and landmarks of a face on the canvas."""
  rgb: np.ndarray  # [H, W, 3] uint8
  alpha: np.ndarray  # [H, W] float32 in [0, 1]
  landmarks: np.ndarray  # [468, 2] float32

  @functools.cached_property
  def rig(self) -> rig.FaceRig:
    return rig.FaceRig(self.landmarks, self.rgb.shape[:2])

  @functools.cached_property
  def face_mask(self) -> np.ndarray:
    """Soft [H, W] float32 mask of the inner face (brows to chin), used by swaps and blends."""
    return face_mask(self.landmarks, self.rgb.shape[:2])


def sample_recipes(num_identities: int, seed: int, usable_photos: set[str],
                   val_fraction: float = DEFAULT_VAL_FRACTION) -> list[IdentityRecipe]:
  """Deterministic identity recipes; `usable_photos` are photos FaceMesh found a face in.

  `val_fraction` of the identities (at least 2, from 8 identities on) are held out for
  validation; changing it moves identities between train and val only (same draws)."""
  if num_identities < 2:
    raise ValueError(f"num_identities must be at least 2 (fakes borrow another identity's face "
                     f"or voice), got {num_identities}")
  rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1D]))
  bases = [name for name in photos.photo_names() if name.rstrip("~") in photos.BASE_PHOTOS
           and name in usable_photos]
  donors = [name for name in photos.photo_names() if name.startswith("lfw")
            and name in usable_photos]
  if not bases or len(donors) < 2:
    raise RuntimeError("FaceMesh found too few faces in the shipped photos; is mediapipe's "
                       "FaceMesh working?")
  splits = _split_assignment(num_identities, rng, val_fraction)
  shape_order = rng.permutation(len(donors))
  appearance_order = rng.permutation(len(donors))
  recipes = []
  # Base portraits are dealt in shuffled rounds, independently of the gender label.
  base_order = [bases[i] for _ in range(-(-num_identities // len(bases)))
                for i in rng.permutation(len(bases))]
  for index in range(num_identities):
    gender = GENDERS[index % 2]
    masculine = gender == "men"
    base = base_order[index]
    others = [name for name in bases if name.rstrip("~") != base.rstrip("~")]
    recipes.append(IdentityRecipe(
        identity_id=f"id{index + 1:05d}",
        index=index,
        split=splits[index],
        gender=gender,
        race=RACES[(index // 2) % len(RACES)],
        base=base,
        shape_donor=donors[shape_order[index % len(donors)]],
        shape_weight=float(rng.uniform(0.55, 0.9)),
        appearance_donor=donors[appearance_order[(index + 7) % len(donors)]],
        appearance_weight=float(rng.uniform(0.65, 0.95) if masculine else rng.uniform(0.3, 0.6)),
        portrait_weight=float(rng.uniform(0.25, 0.5)) if others and rng.random() < 0.45 else 0.0,
        skin_shift=(float(rng.uniform(-14, 8)), float(rng.uniform(-3, 7)),
                    float(rng.uniform(-4, 10))),
        clothes_hue=float(rng.uniform(-20, 20)),
        clothes_gain=float(rng.uniform(0.55, 1.15)),
        skin_smoothing=float(rng.uniform(0.0, 0.8)),
        voice=voice_lib.Voice.sample(rng, gender)))
  return recipes


def _split_assignment(count: int, rng: np.random.Generator,
                      val_fraction: float = DEFAULT_VAL_FRACTION) -> list[str]:
  """About 20 % test, `val_fraction` (default 10 %) val, the rest train, by identity.

  A held-out split needs two identities at least (fakes pair identities within a split), so
  fewer than 4 identities stay all in train, 4-7 give a test split only, 8+ give all three.
  """
  num_test = max(2, round(0.2 * count)) if count >= 4 else 0
  num_val = max(2, round(val_fraction * count)) if count >= 8 else 0
  labels = ["test"] * num_test + ["val"] * num_val
  labels += ["train"] * (count - len(labels))
  return [labels[i] for i in rng.permutation(count)]


def needed_photos(recipes: list[IdentityRecipe]) -> list[str]:
  names = {name for name in photos.photo_names() if name.rstrip("~") in photos.BASE_PHOTOS}
  for recipe in recipes:
    names.update((recipe.shape_donor, recipe.appearance_donor))
  return sorted(names)


# --------------------------------------------------------------------------- canvases


def base_portrait(photo: photos.Photo) -> Portrait:
  """A base photo moved onto the canvas (face upright and scaled), with a person matte."""
  matrix = warp.fit_similarity(photo.landmarks[[photos.FOREHEAD, photos.CHIN]],
                               np.array([_FOREHEAD_TARGET, _CHIN_TARGET], np.float32))
  size = (CANVAS_WIDTH, CANVAS_HEIGHT)
  # Where the canvas reaches past the photo (below a portrait's bottom edge), the body is
  # continued by reflection, which looks like clothing; replication would paint streaks.
  rgb = cv2.warpAffine(photo.image, matrix, size, flags=cv2.INTER_CUBIC,
                       borderMode=cv2.BORDER_REFLECT_101)
  matte = cv2.warpAffine(person_matte(photo), matrix, size, flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
  return Portrait(rgb, np.clip(matte, 0, 1), warp.apply_affine(matrix, photo.landmarks))


def person_matte(photo: photos.Photo) -> np.ndarray:
  """Soft [H, W] float32 matte of the person: GrabCut seeded by the face mesh, holes filled."""
  image, points = photo.image, photo.landmarks
  height, width = image.shape[:2]
  x0, y0 = points.min(axis=0)
  x1, y1 = points.max(axis=0)
  face_w, face_h = x1 - x0, y1 - y0
  cx = (x0 + x1) / 2
  # GrabCut at half resolution: 4x faster and the matte is feathered afterwards anyway.
  scale = 0.5
  small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
  mask = np.full(small.shape[:2], cv2.GC_BGD, np.uint8)
  sx = lambda v: int(round(v * scale))  # noqa: E731
  mask[sx(max(0, y0 - 0.9 * face_h)):, sx(max(0, x0 - 1.1 * face_w)):sx(min(width, x1 + 1.1
                                                                            * face_w))] = (
      cv2.GC_PR_BGD)
  cv2.ellipse(mask, (sx(cx), sx((y0 + y1) / 2 - 0.12 * face_h)),
              (sx(0.72 * face_w), sx(0.78 * face_h)), 0, 0, 360, cv2.GC_PR_FGD, -1)
  cv2.rectangle(mask, (sx(cx - 1.1 * face_w), sx(y1 + 0.45 * face_h)),
                (sx(cx + 1.1 * face_w), mask.shape[0] - 1), cv2.GC_PR_FGD, -1)
  hull = cv2.convexHull(np.round(points * scale).astype(np.int32))
  cv2.fillConvexPoly(mask, hull, cv2.GC_FGD)
  # Neck and torso are the person even where clothes are as dark as the backdrop.
  for top, top_half_width, bottom, bottom_half_width in (
      (y1 - 0.1 * face_h, 0.28 * face_w, y1 + 0.5 * face_h, 0.3 * face_w),
      (y1 + 0.55 * face_h, 0.55 * face_w, height, 0.8 * face_w)):
    quad = np.array([[cx - top_half_width, top], [cx + top_half_width, top],
                     [cx + bottom_half_width, bottom], [cx - bottom_half_width, bottom]])
    cv2.fillConvexPoly(mask, np.round(quad * scale).astype(np.int32), cv2.GC_FGD)
  background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
  cv2.setRNGSeed(0)  # GrabCut's GMM initialisation draws from OpenCV's global RNG
  cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), mask, None, background, foreground, 5,
              cv2.GC_INIT_WITH_MASK)
  person = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD))
  # A silhouette prior (head with hair, neck, widening shoulders) removes backdrop pieces that
  # GrabCut takes for the person, such as flag stripes beside a head.
  prior = np.zeros_like(mask)
  cv2.ellipse(prior, (sx(cx), sx((y0 + y1) / 2 - 0.12 * face_h)),
              (sx(0.85 * face_w), sx(0.9 * face_h)), 0, 0, 360, 1, -1)
  shoulders = np.array([[cx - 0.5 * face_w, y1 - 0.1 * face_h], [cx + 0.5 * face_w,
                                                                 y1 - 0.1 * face_h],
                        [cx + 1.9 * face_w, y1 + 0.9 * face_h], [cx + 2.2 * face_w, height],
                        [cx - 2.2 * face_w, height], [cx - 1.9 * face_w, y1 + 0.9 * face_h]])
  cv2.fillPoly(prior, [np.round(shoulders * scale).astype(np.int32)], 1)
  person &= prior.astype(bool)
  # Closing erodes from the image border too; pad with the edge values so it does not.
  person = ndimage.binary_closing(np.pad(person, 4, mode="edge"), iterations=3)[4:-4, 4:-4]
  person = ndimage.binary_fill_holes(person)
  labels, count = ndimage.label(person)
  if count > 1:
    sizes = ndimage.sum(person, labels, range(1, count + 1))
    person = labels == (1 + int(np.argmax(sizes)))
  # The outermost pixels of a photo (JPEG edges) are unreliable; copy their neighbours so a
  # canvas that reflects the photo at its border shows no seam in the matte.
  person = person.astype(np.float32)
  person[:2], person[-2:] = person[2], person[-3]
  person[:, :2], person[:, -2:] = person[:, 2:3], person[:, -3:-2]
  matte = cv2.resize(person, (width, height), interpolation=cv2.INTER_LINEAR)
  return cv2.GaussianBlur(matte, (0, 0), max(1.0, 0.012 * face_h),
                          borderType=cv2.BORDER_REFLECT)


def face_mask(landmarks: np.ndarray, shape: tuple[int, int], shrink: float = 0.92,
              feather: float = 0.035) -> np.ndarray:
  """Soft mask of the face oval shrunk towards its centre (keeps hairline and jaw edge out)."""
  oval = landmarks[list(photos.FACE_OVAL)]
  center = oval.mean(axis=0)
  oval = center + shrink * (oval - center)
  height = float(np.linalg.norm(landmarks[photos.CHIN] - landmarks[photos.FOREHEAD]))
  mask = np.zeros(shape, np.float32)
  cv2.fillPoly(mask, [np.round(oval * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
  mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, feather * height))
  # Cut the Gaussian's far tail: a blend must leave pixels away from the face exactly as is.
  return np.clip((mask - 0.01) / 0.99, 0, 1)


def _skin_mask(landmarks: np.ndarray, alpha: np.ndarray) -> np.ndarray:
  """Face plus neck below it: where a skin-tone change applies."""
  shape = alpha.shape
  mask = face_mask(landmarks, shape, shrink=1.0, feather=0.02)
  chin = landmarks[photos.CHIN]
  height = float(np.linalg.norm(chin - landmarks[photos.FOREHEAD]))
  jaw_left, jaw_right = landmarks[172], landmarks[397]
  neck = np.array([jaw_left, jaw_right, jaw_right + [0.0, 0.55 * height],
                   jaw_left + [0.0, 0.55 * height]])
  neck_mask = np.zeros(shape, np.float32)
  cv2.fillConvexPoly(neck_mask, np.round(neck).astype(np.int32), 1.0)
  neck_mask = cv2.GaussianBlur(neck_mask, (0, 0), 0.05 * height)
  return np.maximum(mask, neck_mask) * alpha


# --------------------------------------------------------------------------- building


class IdentityBank:
  """Builds (and caches) identity portraits from recipes and the shipped photos."""

  def __init__(self, recipes: list[IdentityRecipe], landmarks: Mapping[str, np.ndarray],
               bases: Mapping[str, Portrait] | None = None,
               portraits: Mapping[str, Portrait] | None = None):
    self.recipes = {recipe.identity_id: recipe for recipe in recipes}
    self._landmarks = dict(landmarks)
    self._bases = dict(bases) if bases else {}
    self._built: dict[str, Portrait] = dict(portraits) if portraits else {}

  def base(self, name: str) -> Portrait:
    if name not in self._bases:
      self._bases[name] = base_portrait(photos.load_photo(name, self._landmarks))
    return self._bases[name]

  def bases(self) -> dict[str, Portrait]:
    """Every base portrait the recipes use (including second portraits of morphs)."""
    for recipe in sorted(self.recipes.values(), key=lambda r: r.index):
      self.base(recipe.base)
      if recipe.portrait_weight:
        self.base(_other_base(recipe.base, {}, self._landmarks))
    return dict(self._bases)

  def portrait(self, identity_id: str) -> Portrait:
    if identity_id not in self._built:
      self._built[identity_id] = self._build(self.recipes[identity_id])
    return self._built[identity_id]

  def _build(self, recipe: IdentityRecipe) -> Portrait:
    base = self.base(recipe.base)
    mesh = base.landmarks
    # 2. Shape: the donor mesh aligned onto the base face, then part of the way there.
    donor = self._landmarks[recipe.shape_donor]
    aligned = warp.apply_affine(warp.fit_similarity(donor, mesh), donor)
    shape = mesh + recipe.shape_weight * (aligned - mesh)
    other = None
    if recipe.portrait_weight:
      other_name = _other_base(recipe.base, self._bases, self._landmarks)
      other = self.base(other_name)
      other_aligned = warp.apply_affine(warp.fit_similarity(other.landmarks, mesh),
                                        other.landmarks)
      shape = shape + recipe.portrait_weight * (other_aligned - shape)
    shape = rig.close_mouth(shape)
    base_rig = base.rig
    target = np.concatenate([shape, base_rig.points[len(mesh):]])
    full = (0, 0, CANVAS_WIDTH, CANVAS_HEIGHT)
    rgb = warp.warp_region(base.rgb, base_rig.points, target, base_rig.triangles, full)
    alpha = warp.warp_region(base.alpha, base_rig.points, target, base_rig.triangles, full)
    inner = face_mask(shape, alpha.shape)
    if other is not None:
      other_rgb = _warp_face_onto(other.rgb, other.landmarks, shape)
      weight = recipe.portrait_weight * inner[..., None]
      rgb = (rgb * (1 - weight) + other_rgb * weight).astype(np.uint8)
    # 3. Appearance: low frequencies of the LFW face's luminance inside the face.
    donor_photo = photos.load_photo(recipe.appearance_donor, self._landmarks)
    donor_rgb = _warp_face_onto(donor_photo.image, donor_photo.landmarks, shape)
    rgb = _transfer_lowpass_luminance(rgb, donor_rgb, inner, recipe.appearance_weight)
    if recipe.skin_smoothing:
      smooth = cv2.bilateralFilter(rgb, 9, 30, 5)
      weight = recipe.skin_smoothing * inner[..., None]
      rgb = np.clip(rgb * (1 - weight) + smooth * weight, 0, 255).astype(np.uint8)
    # 4. Colours.
    rgb = _recolour(rgb, _skin_mask(shape, alpha), alpha, recipe)
    return Portrait(rgb, alpha.astype(np.float32), shape.astype(np.float32))


def morph_toward(target: Portrait, donor: Portrait, weight: float) -> Portrait:
  """`target` with its face `weight` of the way to `donor`'s, in shape and in texture."""
  mesh = target.landmarks
  aligned = warp.apply_affine(warp.fit_similarity(donor.landmarks, mesh), donor.landmarks)
  shape = rig.close_mouth(mesh + weight * (aligned - mesh))
  target_rig = target.rig
  moved = np.concatenate([shape, target_rig.points[len(mesh):]])
  rgb = warp.warp_region(target.rgb, target_rig.points, moved, target_rig.triangles,
                         (0, 0, CANVAS_WIDTH, CANVAS_HEIGHT))
  donor_rgb = _warp_face_onto(donor.rgb, donor.landmarks, shape)
  blend = weight * face_mask(shape, target.alpha.shape)[..., None]
  rgb = np.clip(rgb * (1 - blend) + donor_rgb * blend, 0, 255).astype(np.uint8)
  return Portrait(rgb, target.alpha, shape.astype(np.float32))


def _other_base(name: str, bases: Mapping[str, Portrait], landmarks: Mapping) -> str:
  mirrored = name.endswith("~")
  for candidate in photos.BASE_PHOTOS:
    if candidate != name.rstrip("~"):
      other = candidate + ("~" if mirrored else "")
      if other in bases or other in landmarks:
        return other
  raise KeyError(f"no second base portrait available to morph {name} with")


def _warp_face_onto(image: np.ndarray, landmarks: np.ndarray, shape: np.ndarray) -> np.ndarray:
  """`image`'s face warped so its mesh lands on `shape` (canvas coordinates)."""
  triangles = _mesh_triangles(shape)
  x0, y0 = np.floor(shape.min(axis=0)).astype(int)
  x1, y1 = np.ceil(shape.max(axis=0)).astype(int) + 1
  roi = (max(x0, 0), max(y0, 0), min(x1, CANVAS_WIDTH), min(y1, CANVAS_HEIGHT))
  # Backward map: canvas pixel inside a `shape` triangle -> the same triangle in `image`.
  map_x, map_y = warp.piecewise_affine_maps(landmarks, shape, triangles, roi)
  out = np.zeros((CANVAS_HEIGHT, CANVAS_WIDTH, 3), np.uint8)
  rx0, ry0, rx1, ry1 = roi
  out[ry0:ry1, rx0:rx1] = cv2.remap(image, map_x, map_y, cv2.INTER_CUBIC,
                                    borderMode=cv2.BORDER_REPLICATE)
  return out


def _mesh_triangles(shape: np.ndarray) -> np.ndarray:
  return warp.triangulate(shape)


def _transfer_lowpass_luminance(rgb: np.ndarray, donor: np.ndarray, mask: np.ndarray,
                                weight: float) -> np.ndarray:
  lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
  donor_l = cv2.cvtColor(donor, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)
  inside = mask > 0.5
  # Match the donor's level and contrast to the base face: only its pattern is transferred.
  base_mean, base_std = lab[..., 0][inside].mean(), lab[..., 0][inside].std() + 1e-3
  donor_mean, donor_std = donor_l[inside].mean(), donor_l[inside].std() + 1e-3
  donor_l = (donor_l - donor_mean) * (base_std / donor_std) + base_mean
  sigma = LOWPASS_SIGMA * CANVAS_FACE_HEIGHT
  base_low = cv2.GaussianBlur(lab[..., 0], (0, 0), sigma)
  donor_low = cv2.GaussianBlur(donor_l, (0, 0), sigma)
  lab[..., 0] += weight * mask * (donor_low - base_low)
  return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def _recolour(rgb: np.ndarray, skin: np.ndarray, alpha: np.ndarray,
              recipe: IdentityRecipe) -> np.ndarray:
  lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
  # OpenCV's 8-bit Lab: L scaled to 0-255, a and b offset by 128.
  shift = np.array(recipe.skin_shift, np.float32) * np.array([255 / 100, 1, 1], np.float32)
  lab += skin[..., None] * shift
  rest = np.clip(alpha - skin, 0, 1)[..., None]
  angle = np.deg2rad(recipe.clothes_hue)
  a, b = lab[..., 1] - 128, lab[..., 2] - 128
  rotated = np.stack([lab[..., 0] * recipe.clothes_gain,
                      128 + a * np.cos(angle) - b * np.sin(angle),
                      128 + a * np.sin(angle) + b * np.cos(angle)], axis=2)
  lab = lab * (1 - rest) + rotated * rest
  return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
