"""People counting: the authors' rule and the robust one, on boxes and on a real video.

The box-level tests are instant. The video test generates a 2-person clip where the second face
is about 2.5x smaller in area than the first (and therefore less confident to MTCNN), tracks it
with both rules and checks that the faithful rule keeps one face and the robust rule both.
"""
import numpy as np
import pytest

from data.facetrack import crops
from data.facetrack import detect
from data.facetrack import pipeline
from tests import video_fixtures as vf


def _detections(boxes_per_frame, size=(1280, 720), stride=3):
  boxes = [np.array(b, np.float64).reshape(-1, 5) for b in boxes_per_frame]
  boxes = [b[np.argsort(-(b[:, 2] * b[:, 3]), kind="stable")] for b in boxes]
  return detect.Detections(num_frames=len(boxes) * stride, frame_size=size, stride=stride,
                           frame_indices=np.arange(len(boxes)) * stride, boxes=boxes)


# The case: both faces clearly visible, areas 2.7x apart, the smaller one at 0.9947.
BIG = (300, 200, 200, 240, 0.99999)
SMALL = (900, 260, 122, 145, 0.9947)
TINY = (1150, 40, 60, 70, 0.999)          # a background face ~11x smaller than BIG


def test_faithful_rule_drops_a_smaller_less_confident_second_face():
  two = _detections([[BIG, SMALL]] * 10)
  assert len(crops.plan_crops(two, people_count="faithful")) == 1


def test_robust_rule_counts_both_and_follows_each_by_its_own_size():
  moving = [[(BIG[0] + 4 * k,) + BIG[1:], (SMALL[0] - 3 * k,) + SMALL[1:]] for k in range(10)]
  plans = crops.plan_crops(_detections(moving), people_count="robust", mode="follow")
  assert [p.part for p in plans] == [0, 1] and all(p.multi for p in plans)
  assert [p.accepted for p in plans] == [10, 10]
  centres = [(p.boxes[-3, 0] + p.boxes[-3, 2]) / 2 for p in plans]
  assert centres[0] == pytest.approx(BIG[0] + 36 + BIG[2] / 2, abs=2)
  assert centres[1] == pytest.approx(SMALL[0] - 27 + SMALL[2] / 2, abs=2)


def test_robust_rule_ignores_tiny_background_faces_and_occasional_detections():
  assert crops.count_people_robust(_detections([[BIG, TINY]] * 10), crops.Thresholds()) == 1
  # The second face in only 3 of 10 frames (a passer-by, or false positives): one person.
  flicker = _detections([[BIG, SMALL]] * 3 + [[BIG]] * 7)
  assert crops.count_people_robust(flicker, crops.Thresholds()) == 1
  # ... in 6 of 10 (missed now and then): two people.
  missed = _detections([[BIG, SMALL]] * 6 + [[BIG]] * 4)
  assert crops.count_people_robust(missed, crops.Thresholds()) == 2
  # Unsure faces (< 0.95) never count.
  unsure = _detections([[BIG, SMALL[:4] + (0.9,)]] * 10)
  assert crops.count_people_robust(unsure, crops.Thresholds()) == 1
  assert len(crops.plan_crops(_detections([[BIG, SMALL]] * 10), max_faces=1,
                              people_count="robust")) == 1


def test_unknown_people_count_is_refused():
  with pytest.raises(ValueError, match="people"):
    crops.plan_crops(_detections([[BIG]]), people_count="most")
  with pytest.raises(ValueError, match="people_count"):
    pipeline.TrackerOptions(people_count="most")


# A 2-person 720p-like scene at a smaller size (MTCNN on CPU): the left face about 1.6x the
# right one's side (2.6x the area).
UNEQUAL_PAIR = vf.Scene((640, 360), 1.5, (
    vf.FaceMotion("astronaut", (190, 185, 1.0, -4), (200, 180, 1.05, 4)),
    vf.FaceMotion("hopper", (480, 170, 0.62, 3), (470, 175, 0.6, -3))))


def test_two_unequal_people_one_track_faithful_two_robust(tmp_path):
  from tests.test_facetrack import TOLERANCE_PX, _face_of, alignment_errors
  path = vf.write_scene(tmp_path / "unequal_pair.mp4", UNEQUAL_PAIR, fps=29)
  faithful = pipeline.FaceTracker(pipeline.TrackerOptions())
  robust = pipeline.FaceTracker(pipeline.TrackerOptions(people_count="robust"),
                                detector=faithful.detector)
  # MTCNN sees both faces below 0.9995, so the authors' rule counts nobody as "very
  # confident" and falls back to one face, the largest.
  single, = faithful.track(path)
  assert not single.name.endswith("part1") and _face_of(single, UNEQUAL_PAIR, 29) == 0
  pair = robust.track(path)
  assert [t.name for t in pair] == ["unequal_pair@part1", "unequal_pair@part2"]
  assert [_face_of(t, UNEQUAL_PAIR, 29) for t in pair] == [0, 1]
  for face, track in enumerate(pair):
    assert track.detected.mean() > 0.9
    errors = alignment_errors(track, UNEQUAL_PAIR, face, 29)
    assert len(errors) > 30 and errors.max() < TOLERANCE_PX, (track.name, errors.max())
