"""The keyframe detection schedule: MTCNN (JAX) on every K-th frame and again where FaceMesh
loses a face or the face leaves its crop; FaceMesh tracks in between. Checked against the known
motion of generated videos, like the stride schedule in test_facetrack.py."""
import numpy as np
import pytest

from data.facetrack import landmarks
from data.facetrack import pipeline
from tests import video_fixtures as vf
from tests.test_facetrack import TOLERANCE_PX
from tests.test_facetrack import _face_of
from tests.test_facetrack import alignment_errors


@pytest.fixture(scope="module")
def jax_detector():
  from data.facetrack import detect
  return detect.make_detector("jax")


def _analyse(tracker, path):
  store = landmarks.LandmarkStore()
  try:
    return tracker.analyse(str(path), store)
  finally:
    store.close()


def test_a_face_leaving_its_crop_between_keyframes_is_detected_again(jax_detector, tmp_path):
  path = vf.write_scene(tmp_path / "crossing.mp4", vf.CROSSING, fps=29)
  options = pipeline.TrackerOptions(detector="jax", schedule="keyframe", keyframe_interval=29,
                                    crop_mode="follow")
  tracker = pipeline.FaceTracker(options, detector=jax_detector)
  analysis = _analyse(tracker, path)
  # Keyframes 0 and 29 only; the face crosses 460 px in 2 s, out of a crop placed on the last
  # keyframe, so more detections were needed (and made).
  assert analysis.timings["detections"] > 2
  track, = tracker.track(path)
  assert track.detected.mean() > 0.95
  errors = alignment_errors(track, vf.CROSSING, 0, 29)
  assert len(errors) > 50 and errors.max() < TOLERANCE_PX, errors.max()


@pytest.mark.slow
def test_keyframe_schedule_with_robust_count_tracks_two_faces(jax_detector, tmp_path):
  path = vf.write_scene(tmp_path / "two_faces.mp4", vf.TWO_FACES, fps=29)
  options = pipeline.TrackerOptions(detector="jax", schedule="keyframe", people_count="robust")
  tracks = pipeline.FaceTracker(options, detector=jax_detector).track(path)
  assert [t.name for t in tracks] == ["two_faces@part1", "two_faces@part2"]
  faces = [_face_of(t, vf.TWO_FACES, 29) for t in tracks]
  assert sorted(faces) == [0, 1]
  for track, face in zip(tracks, faces):
    errors = alignment_errors(track, vf.TWO_FACES, face, 29)
    assert len(errors) == 58 and errors.max() < TOLERANCE_PX, (track.name, errors.max())


def test_schedule_options_are_checked():
  with pytest.raises(ValueError, match="schedule"):
    pipeline.TrackerOptions(schedule="sometimes")
  with pytest.raises(ValueError, match="keyframe_interval"):
    pipeline.TrackerOptions(keyframe_interval=0)
  with pytest.raises(ValueError, match="detector"):
    pipeline.TrackerOptions(detector="torch")
  with pytest.raises(ValueError, match="keyframe_mesh_faces"):
    pipeline.TrackerOptions(keyframe_mesh_faces=0)
  lost = pipeline._Redetector.leaving
  seen = type("Seen", (), {"seen_counts": [3]})()
  never = type("Never", (), {"seen_counts": []})()
  assert lost(seen, []) and not lost(never, [])
  assert not lost(seen, [np.array([0.2, 0.2, 0.8, 0.8])])
  assert lost(seen, [np.array([0.5, 0.2, 0.995, 0.8])])


@pytest.mark.parametrize("schedule,faces", [("stride", 2), ("keyframe", 1)])
def test_facemesh_detects_faces_itself_only_in_the_stride_schedule(
    schedule, faces, jax_detector, tmp_path, monkeypatch):
  """The keyframe schedule leaves finding faces to MTCNN: its FaceMesh tracks one face per crop
  (max_num_faces=1), so it does not run its own detector on every frame; the stride schedule
  keeps the authors' two (and their association of the two)."""
  seen = []
  real = landmarks.CropTracker.__init__

  def spy(self, part, multi, store, settings=landmarks.FaceMeshSettings()):
    seen.append(settings.max_num_faces)
    real(self, part, multi, store, settings)

  monkeypatch.setattr(landmarks.CropTracker, "__init__", spy)
  path = vf.write_scene(tmp_path / "crossing.mp4", vf.CROSSING, fps=29)
  options = pipeline.TrackerOptions(detector="jax", schedule=schedule, max_seconds=0.5)
  _analyse(pipeline.FaceTracker(options, detector=jax_detector), path)
  assert seen == [faces]
