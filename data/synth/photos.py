"""Real face photographs that installed packages ship, and their FaceMesh landmarks.

The synthetic set is built from real faces only: two sharp portraits and a hundred small
Labeled-Faces-in-the-Wild crops. Every photo is also used mirrored; FaceMesh is run on the
mirrored pixels too, so landmark indices keep their anatomical meaning (33 stays the right
eye's outer corner) without a hand-written mirror permutation.

Photos considered and why they are (not) used:

* ``skimage.data.astronaut()`` (512x512 RGB, Eileen Collins): portrait, frontal, used as a base.
* matplotlib ``sample_data/grace_hopper.jpg`` (512x600 RGB): portrait, frontal, used as a base.
* ``skimage.data.lfw_subset()``: 100 face crops of 25x25 grey pixels (the other 100 entries are
  non-faces and are skipped). Too small to be a sharp face on their own, they give the face
  SHAPE (FaceMesh finds 99 of 100 after upscaling) and the low-frequency appearance (brows,
  eye sockets, beard shadow) of new identities; see ``identities.py``.
* ``skimage.data.camera()``: the cameraman's face is in profile behind a camera; FaceMesh finds
  no face, so it is not used.
* ``skimage.data`` 'no_time_for_that_tiny.gif' is 25x14 pixels; no other face photo ships in
  site-packages (the rest are textures, animals and objects; some serve as backgrounds).
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import pathlib

import cv2
import numpy as np

log = logging.getLogger(__name__)

# --- FaceMesh landmark groups (indices into the 468-point mesh; refine_landmarks adds 10 iris
# points 468-477 that the warps do not use).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67,
             109)
UPPER_INNER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER_LIP = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
UPPER_OUTER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LOWER_OUTER_LIP = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
MOUTH_CORNERS = (61, 291, 78, 308)
# Eyes in image order for a frontal face: "right" is the subject's right (image left).
RIGHT_UPPER_LID = (246, 161, 160, 159, 158, 157, 173)
RIGHT_LOWER_LID = (7, 163, 144, 145, 153, 154, 155)
RIGHT_CREASE = (247, 30, 29, 27, 28, 56, 190)
LEFT_UPPER_LID = (466, 388, 387, 386, 385, 384, 398)
LEFT_LOWER_LID = (249, 390, 373, 374, 380, 381, 382)
LEFT_CREASE = (467, 260, 259, 257, 258, 286, 414)
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (263, 362)
FOREHEAD, CHIN, NOSE_TIP = 10, 152, 1
NUM_MESH_POINTS = 468

BASE_PHOTOS = ("astronaut", "grace_hopper")
NUM_LFW_FACES = 100  # entries 0-99 of lfw_subset are faces, 100-199 are not
LFW_UPSCALED = 200


@dataclasses.dataclass(frozen=True)
class Photo:
  """One face photo: RGB pixels and the 468 FaceMesh landmarks in pixel coordinates."""
  name: str
  image: np.ndarray  # [H, W, 3] uint8
  landmarks: np.ndarray  # [468, 2] float32 (x, y)

  @property
  def face_height(self) -> float:
    return float(np.linalg.norm(self.landmarks[CHIN] - self.landmarks[FOREHEAD]))


def photo_names(num_lfw: int = NUM_LFW_FACES) -> list[str]:
  """All usable photo names; a trailing '~' means mirrored."""
  names = list(BASE_PHOTOS) + [f"lfw{i:03d}" for i in range(num_lfw)]
  return names + [name + "~" for name in names]


def load_pixels(name: str) -> np.ndarray:
  """RGB uint8 pixels of a photo by name (see `photo_names`)."""
  mirrored = name.endswith("~")
  base = name.rstrip("~")
  if base == "astronaut":
    import skimage.data
    image = skimage.data.astronaut()
  elif base == "grace_hopper":
    import matplotlib.cbook
    import PIL.Image
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
      image = np.asarray(PIL.Image.open(handle).convert("RGB"))
  elif base.startswith("lfw"):
    index = int(base[3:])
    if not 0 <= index < NUM_LFW_FACES:
      raise ValueError(f"lfw_subset has faces 0-{NUM_LFW_FACES - 1}, got photo {name!r}")
    grey = (_lfw_subset()[index] * 255).round().astype(np.uint8)
    grey = cv2.resize(grey, (LFW_UPSCALED, LFW_UPSCALED), interpolation=cv2.INTER_CUBIC)
    image = np.repeat(grey[..., None], 3, axis=2)
  else:
    raise ValueError(f"unknown photo {name!r}; expected one of astronaut, grace_hopper, lfwNNN")
  image = np.ascontiguousarray(image[:, ::-1] if mirrored else image)
  return image.astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _lfw_subset() -> np.ndarray:
  import skimage.data
  return skimage.data.lfw_subset()


class LandmarkFinder:
  """MediaPipe FaceMesh (legacy solution API, refine_landmarks=True) on still photos."""

  def __init__(self):
    import mediapipe as mp
    self._mesh = mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=1, refine_landmarks=True,
        min_detection_confidence=0.3)

  def __call__(self, image: np.ndarray) -> np.ndarray | None:
    """[468, 2] float32 pixel landmarks of the most prominent face, or None."""
    result = self._mesh.process(np.ascontiguousarray(image))
    if not result.multi_face_landmarks:
      return None
    height, width = image.shape[:2]
    points = np.array([(p.x * width, p.y * height)
                       for p in result.multi_face_landmarks[0].landmark], np.float32)
    return points[:NUM_MESH_POINTS]

  def close(self) -> None:
    self._mesh.close()

  def __enter__(self) -> "LandmarkFinder":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def find_landmarks(names: list[str]) -> dict[str, np.ndarray]:
  """FaceMesh landmarks for the named photos; photos without a detected face are left out."""
  found = {}
  with LandmarkFinder() as finder:
    for name in names:
      points = finder(load_pixels(name))
      if points is None:
        log.info("FaceMesh found no face in photo %s; it is not used", name)
        continue
      found[name] = points
  return found


def load_photo(name: str, landmarks: dict[str, np.ndarray]) -> Photo:
  return Photo(name, load_pixels(name), np.asarray(landmarks[name], np.float32))


def background_names() -> list[str]:
  """Real photographs without faces (textures, scenes) used, blurred, as backgrounds."""
  return ["brick", "grass", "gravel", "coffee", "rocket", "stereo_motorcycle", "hubble_deep_field",
          "china", "flower", "coins"]


def load_background(name: str) -> np.ndarray:
  """RGB uint8 pixels of a background photo."""
  if name in ("china", "flower"):
    import importlib.util
    import PIL.Image
    # The file's location, without importing sklearn.datasets (slow) to find it.
    package = pathlib.Path(importlib.util.find_spec("sklearn").origin).parent
    path = package / "datasets" / "images" / f"{name}.jpg"
    return np.asarray(PIL.Image.open(path).convert("RGB"))
  import skimage.data
  image = getattr(skimage.data, name)()
  if name == "stereo_motorcycle":
    image = image[0]  # (left, right, disparity)
  if image.ndim == 2:
    image = np.repeat(image[..., None], 3, axis=2)
  return np.ascontiguousarray(image[..., :3]).astype(np.uint8)
