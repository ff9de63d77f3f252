"""From MTCNN boxes to crop regions: how many people, which box is whose, where to look.

The authors' logic (FacePipe; constants in `Thresholds`):
* "Main face" size: the mean area of the first (largest) box of each frame whose confidence
  exceeds `base` (0.9995).
* Number of people: the mode over frames (with any box) of the count of faces that are either
  very confident (> base) or fairly confident (> 0.9) and of main-face size (0.8-1.2x).
  One: single mode. More: multi-face mode, at most `max_faces` (2) tracks.
* Single mode: the first box seeds the region; a frame's largest box, if confident (> 0.99),
  is accepted when its area is within 0.6-1.4x of the last accepted one.
* Multi-face mode: the faces of the first frame showing that many people fix one area each.
  A later box belongs to an area when its centre is within 20% of the frame's width and
  height of the area's centre and either it is very confident and of main-face size,
  or (fallback) it is very confident or fairly confident (> 0.95) and of main-face size, and
  within 0.6-1.4x of the area's last accepted box.
* Boxes are squared (side = max(w, h)), enlarged 1.8x about their centre, clipped to the frame.

People counts (`people_count`):
* "faithful" (default of data.prepare): the authors' rule above. It is tuned for datasets of
  one or two similar-sized faces: a second person whose face is 2-3x smaller than the main
  face and slightly less than "very confident" (e.g. 0.995) is never counted.
* "robust" (default of the single-video commands): a face counts in a detection frame when its
  confidence exceeds `robust_confidence` (0.95) and its area is at least `robust_min_area`
  (1/8) of that frame's largest such face, so a 2-3x size difference does not matter while a
  tiny background face (about 10x smaller) still does not count. The video shows N people
  when at least `robust_share` (half) of the detection frames that show anyone show N or more
  counted faces (so a few missed or spurious detections change nothing). Each person's area
  is then followed by its own size: a box belongs to it when confident, near it (the same 20%
  rule) and within 0.6-1.4x of its last accepted box, the nearest such box first.

Crop modes:
* "static" (the authors'): ONE crop per track, the union of all its accepted boxes.
* "follow" (ours): the crop follows the face: each frame's crop is the enlarged box
  interpolated linearly between accepted detections (held before the first and after the
  last), and a multi-face area's centre moves to each accepted box. A face that crosses the
  picture then stays large in its crop, which FaceMesh needs to find it again after losing it;
  the static union of a moving face is mostly background.

Deliberate differences from the released code:
* It never updates the "last accepted area" of the multi-face fallback, so the fallback cannot
  fire; we update it on every accepted box, as the paper's description implies.
* It takes the areas from the first frame with that many faces of confidence > 0.99 whatever
  their size, which can make a small confident background face an area in place of a counted
  person; we take them among the faces that were counted as people. When no frame shows the
  counted number (the released code then fails), we take the first frame with the most.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Optional

import numpy as np

from data.facetrack.detect import Detections


@dataclasses.dataclass(frozen=True)
class Thresholds:
  base: float = 0.9995            # "very confident"
  confident: float = 0.99         # multi-face areas; single-face updates
  fallback: float = 0.95          # multi-face fallback, with main-face size
  counting: float = 0.9           # counting people, with main-face size
  main_size: tuple = (0.8, 1.2)   # area relative to the main face
  last_size: tuple = (0.6, 1.4)   # area relative to the last accepted box
  near: float = 0.2               # centre distance, fraction of frame width / height
  enlarge: float = 1.8
  robust_confidence: float = 0.95  # robust people count: a confident face
  robust_min_area: float = 1 / 8   # ... at least this share of the frame's largest one
  robust_share: float = 0.5        # ... N people when this share of frames shows N or more


PEOPLE_COUNTS = ("faithful", "robust")


@dataclasses.dataclass
class CropPlan:
  """Where FaceMesh looks for one face: per-frame crop boxes [T, 4] (x1, y1, x2, y2) ints."""
  part: int                       # 0-based; outputs are named @part{part + 1} in multi mode
  multi: bool
  boxes: np.ndarray
  accepted: int                   # detections accepted for this face


def _area(box) -> float:
  return float(box[2] * box[3])


def _centre(box) -> tuple:
  """Integer centre, as the authors compute it."""
  return int(box[0] + box[2] / 2), int(box[1] + box[3] / 2)


def enlarge(box, factor: float = Thresholds.enlarge) -> np.ndarray:
  """(x, y, w, h) -> square (x1, y1, x2, y2) of side factor * max(w, h) about the centre."""
  cx, cy = _centre(box)
  half = int(factor * max(box[2], box[3]) / 2)
  return np.array([cx - half, cy - half, cx + half, cy + half], np.int64)


def clip(region, frame_size) -> np.ndarray:
  width, height = frame_size
  return np.array([max(region[0], 0), max(region[1], 0), min(region[2], width),
                   min(region[3], height)], np.int64)


def _union(a, b) -> np.ndarray:
  return np.array([min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])],
                  np.int64)


def _within(value, reference, bounds) -> bool:
  return reference is not None and bounds[0] * reference <= value <= bounds[1] * reference


def main_face_area(detections: Detections, t: Thresholds) -> Optional[float]:
  """Mean area of each frame's largest box when very confident (None if there is none)."""
  areas, weights = [], []
  for boxes, weight in zip(detections.boxes, detections.frame_weights()):
    if len(boxes) and boxes[0, 4] > t.base and weight:
      areas.append(_area(boxes[0]))
      weights.append(weight)
  return float(np.average(areas, weights=weights)) if areas else None


def count_people(detections: Detections, main_area: Optional[float], t: Thresholds) -> int:
  """Mode over frames with any box of the number of confident faces (ties: first seen)."""
  histogram = collections.Counter()
  for boxes, weight in zip(detections.boxes, detections.frame_weights()):
    if not len(boxes) or not weight:
      continue
    histogram[len(_counted(boxes, main_area, t))] += weight
  if not histogram:
    return 0
  return max(histogram, key=histogram.__getitem__)   # Counter keeps first-seen order on ties


def _counted(boxes, main_area: Optional[float], t: Thresholds) -> list:
  """The boxes that count as people: very confident, or fairly confident of main-face size."""
  return [box for box in boxes if box[4] > t.base or
          (box[4] > t.counting and _within(_area(box), main_area, t.main_size))]


def _areas(detections: Detections, people: int, main_area: Optional[float],
           t: Thresholds) -> list:
  """The counted faces of the first frame showing `people` of them (else the most)."""
  best = []
  for boxes in detections.boxes:
    counted = _counted(boxes, main_area, t)
    if len(counted) == people:
      return counted
    if len(counted) > len(best):
      best = counted
  return best


def _robust_counted(boxes, t: Thresholds) -> list:
  """Confident faces of one frame not much smaller than its largest one (largest first)."""
  confident = [box for box in boxes if box[4] > t.robust_confidence]
  if not confident:
    return []
  largest = max(_area(box) for box in confident)
  return [box for box in confident if _area(box) >= t.robust_min_area * largest]


def count_people_robust(detections: Detections, t: Thresholds) -> int:
  """Most people shown by at least `robust_share` of the frames that show anyone."""
  counts, weights = [], []
  for boxes, weight in zip(detections.boxes, detections.frame_weights()):
    counted = len(_robust_counted(boxes, t))
    if counted and weight:
      counts.append(counted)
      weights.append(weight)
  if not counts:
    return 0
  counts, weights = np.array(counts), np.array(weights, np.float64)
  people = 1
  for n in range(2, counts.max() + 1):
    if weights[counts >= n].sum() >= t.robust_share * weights.sum():
      people = n
  return people


def _robust_areas(detections: Detections, people: int, t: Thresholds) -> list:
  """The counted faces of the first frame showing exactly `people` of them (else the most)."""
  best = []
  for boxes in detections.boxes:
    counted = _robust_counted(boxes, t)
    if len(counted) == people:
      return counted
    if len(counted) > len(best):
      best = counted
  return best


def _per_frame(detections: Detections, accepted: dict, seed, mode: str) -> np.ndarray:
  """[T, 4] crop boxes from accepted detections {frame index: enlarged region}."""
  frame_size, count = detections.frame_size, detections.num_frames
  if mode == "static":
    region = clip(seed, frame_size)
    for box in accepted.values():
      region = _union(region, clip(box, frame_size))
    return np.repeat(region[None], count, axis=0)
  if not accepted:
    accepted = {0: seed}
  frames = np.array(sorted(accepted))
  regions = np.array([accepted[f] for f in frames], np.float64)
  centres = (regions[:, :2] + regions[:, 2:]) / 2
  sides = regions[:, 2] - regions[:, 0]
  everywhere = np.arange(count)
  cx = np.interp(everywhere, frames, centres[:, 0])
  cy = np.interp(everywhere, frames, centres[:, 1])
  half = np.interp(everywhere, frames, sides) / 2
  boxes = np.stack([cx - half, cy - half, cx + half, cy + half], axis=1).round().astype(np.int64)
  return np.stack([clip(b, frame_size) for b in boxes])


def _single(detections: Detections, t: Thresholds, mode: str) -> Optional[CropPlan]:
  seed_box = None
  for boxes in detections.boxes:
    if len(boxes) and (mode == "static" or boxes[0, 4] > t.confident):
      seed_box = boxes[0]     # the authors seed with the first box, confident or not
      break
  if seed_box is None:
    return None
  last_area = _area(seed_box)
  accepted = {}
  for index, boxes in zip(detections.frame_indices, detections.boxes):
    if len(boxes) and boxes[0, 4] > t.confident and _within(_area(boxes[0]), last_area,
                                                            t.last_size):
      accepted[int(index)] = enlarge(boxes[0], t.enlarge)
      last_area = _area(boxes[0])
  plan_boxes = _per_frame(detections, accepted, enlarge(seed_box, t.enlarge), mode)
  return CropPlan(part=0, multi=False, boxes=plan_boxes, accepted=len(accepted))


def _near(box, centre, frame_size, t: Thresholds) -> bool:
  cx, cy = _centre(box)
  return (abs(cx - centre[0]) <= frame_size[0] * t.near and
          abs(cy - centre[1]) <= frame_size[1] * t.near)


def _multi_area(detections: Detections, area_box, part: int, main_area: float,
                t: Thresholds, mode: str) -> CropPlan:
  centre = _centre(area_box)
  last_area = None
  accepted = {}
  for index, boxes in zip(detections.frame_indices, detections.boxes):
    chosen = None
    for box in boxes:
      if (box[4] > t.base and _within(_area(box), main_area, t.main_size) and
          _near(box, centre, detections.frame_size, t)):
        chosen = box
        break
    if chosen is None:
      for box in boxes:
        if ((box[4] > t.base or (box[4] > t.fallback and
                                 _within(_area(box), main_area, t.main_size))) and
            _near(box, centre, detections.frame_size, t) and
            _within(_area(box), last_area, t.last_size)):
          chosen = box
          break
    if chosen is not None:
      accepted[int(index)] = enlarge(chosen, t.enlarge)
      last_area = _area(chosen)
      if mode == "follow":
        centre = _centre(chosen)
  plan_boxes = _per_frame(detections, accepted, enlarge(area_box, t.enlarge), mode)
  return CropPlan(part=part, multi=True, boxes=plan_boxes, accepted=len(accepted))


def _robust_multi_area(detections: Detections, area_box, part: int, t: Thresholds,
                       mode: str) -> CropPlan:
  """One person's crops, followed by its own size (robust people count)."""
  centre = _centre(area_box)
  last_area = _area(area_box)
  accepted = {}
  for index, boxes in zip(detections.frame_indices, detections.boxes):
    matching = [box for box in boxes
                if box[4] > t.robust_confidence and _near(box, centre, detections.frame_size, t)
                and _within(_area(box), last_area, t.last_size)]
    if not matching:
      continue
    chosen = min(matching, key=lambda box: np.hypot(_centre(box)[0] - centre[0],
                                                    _centre(box)[1] - centre[1]))
    accepted[int(index)] = enlarge(chosen, t.enlarge)
    last_area = _area(chosen)
    if mode == "follow":
      centre = _centre(chosen)
  plan_boxes = _per_frame(detections, accepted, enlarge(area_box, t.enlarge), mode)
  return CropPlan(part=part, multi=True, boxes=plan_boxes, accepted=len(accepted))


def plan_crops(detections: Detections, *, max_faces: int = 2, mode: str = "static",
               thresholds: Thresholds = Thresholds(), people_count: str = "faithful") -> list:
  """Crop plans, one per face to track (empty when MTCNN found no face at all).

  `people_count`: "faithful" (the authors' rule) or "robust" (see the module docstring).
  """
  if mode not in ("static", "follow"):
    raise ValueError(f"crop mode must be 'static' or 'follow', got {mode!r}")
  if people_count not in PEOPLE_COUNTS:
    raise ValueError(f"people count must be one of {PEOPLE_COUNTS}, got {people_count!r}")
  if not detections.any_face:
    return []
  t = thresholds
  if people_count == "robust":
    people = count_people_robust(detections, t)
    areas = _robust_areas(detections, people, t)[:max_faces] if people > 1 else []
    if len(areas) <= 1:
      plan = _single(detections, t, mode)
      return [plan] if plan is not None else []
    return [_robust_multi_area(detections, box, part, t, mode)
            for part, box in enumerate(areas)]
  main_area = main_face_area(detections, t)
  people = count_people(detections, main_area, t)
  if people <= 1 or max_faces <= 1:
    plan = _single(detections, t, mode)
    return [plan] if plan is not None else []
  areas = _areas(detections, people, main_area, t)
  if len(areas) <= 1:
    plan = _single(detections, t, mode)
    return [plan] if plan is not None else []
  # At most max_faces people: the largest ones (boxes are listed largest first).
  areas = areas[:max_faces]
  if main_area is None:  # no very confident largest face: use the areas' own mean size
    main_area = float(np.mean([_area(box) for box in areas]))
  return [_multi_area(detections, box, part, main_area, t, mode)
          for part, box in enumerate(areas)]
