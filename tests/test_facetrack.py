"""The face tracker on real videos with known motion, its consistency logic, and its CLI.

MTCNN runs on CPU with TensorFlow, so the videos are short and small and one detector is shared
by every test of this module.
"""
import concurrent.futures
import json
import os
import shutil

import numpy as np
import pytest

from data import align
from data import constants
from data import tracks as tracks_lib
from data import video
from data import video_writer
from data.facetrack import cli
from data.facetrack import crops
from data.facetrack import detect
from data.facetrack import landmarks
from data.facetrack import pipeline
from tests import video_fixtures as vf

TOLERANCE_PX = 3.0            # aligned eye and nose points, 224x224 output


# ------------------------------------------------------------------- consistency logic (fast)

def _detections(boxes_per_frame, size=(640, 360), stride=3, num_frames=None):
  boxes = [np.array(b, np.float64).reshape(-1, 5) for b in boxes_per_frame]
  boxes = [b[np.argsort(-(b[:, 2] * b[:, 3]), kind="stable")] for b in boxes]
  indices = np.arange(len(boxes)) * stride
  return detect.Detections(num_frames=num_frames or len(boxes) * stride, frame_size=size,
                           stride=stride, frame_indices=indices, boxes=boxes)


def test_boxes_are_squared_and_enlarged():
  np.testing.assert_array_equal(crops.enlarge((10, 20, 30, 40)), [-11, 4, 61, 76])
  np.testing.assert_array_equal(crops.clip([-11, 4, 61, 76], (50, 50)), [0, 4, 50, 50])


def test_single_face_accepts_consistent_sizes_only():
  face = (100, 100, 50, 60, 0.999)
  moved = (130, 100, 52, 60, 0.999)
  too_big = (300, 50, 120, 140, 0.9999)          # > 1.4x the last accepted area
  unsure = (400, 200, 50, 60, 0.95)               # below the 0.99 single-face threshold
  plans = crops.plan_crops(_detections([[face], [moved], [too_big], [unsure], []]))
  assert len(plans) == 1 and not plans[0].multi and plans[0].accepted == 2
  union = crops._union(crops.clip(crops.enlarge(face), (640, 360)),
                       crops.clip(crops.enlarge(moved), (640, 360)))
  np.testing.assert_array_equal(plans[0].boxes, np.repeat(union[None], 15, axis=0))


def test_people_are_counted_by_the_mode_and_small_faces_ignored():
  left, right = (80, 100, 60, 70, 0.9996), (400, 100, 58, 72, 0.95)
  small = (580, 20, 15, 18, 0.9990)               # a distractor: not main-face size
  two = _detections([[left, right, small]] * 4 + [[left, small]])
  main = crops.main_face_area(two, crops.Thresholds())
  assert main == pytest.approx(60 * 70)
  assert crops.count_people(two, main, crops.Thresholds()) == 2
  plans = crops.plan_crops(two)
  assert [p.part for p in plans] == [0, 1] and all(p.multi for p in plans)
  centres = [(p.boxes[0, 0] + p.boxes[0, 2]) / 2 for p in plans]
  assert abs(centres[0] - 110) < 3 and abs(centres[1] - 429) < 3
  one = _detections([[left, small]] * 5)
  assert [p.multi for p in crops.plan_crops(one)] == [False]


def test_max_faces_keeps_the_largest():
  faces = [(50, 50, 60, 60, 0.9999), (250, 50, 64, 64, 0.9999), (450, 50, 62, 62, 0.9999)]
  plans = crops.plan_crops(_detections([faces] * 4), max_faces=2)
  assert len(plans) == 2
  assert sorted(int(p.boxes[0, 0]) for p in plans) == sorted(
      int(crops.enlarge(f)[0]) for f in faces[1:])
  assert len(crops.plan_crops(_detections([faces] * 4), max_faces=1)) == 1


def test_follow_crops_interpolate_between_detections():
  path = [(100 + 30 * k, 100, 50, 60, 0.999) for k in range(5)]
  plan, = crops.plan_crops(_detections([[b] for b in path]), mode="follow")
  centres = (plan.boxes[:, 0] + plan.boxes[:, 2]) / 2
  np.testing.assert_allclose(centres[::3], [125 + 30 * k for k in range(5)], atol=1)
  np.testing.assert_allclose(centres[1], 135, atol=1)       # a third of the way to the next
  static, = crops.plan_crops(_detections([[b] for b in path]), mode="static")
  assert np.all(static.boxes == static.boxes[0])


def test_association_keeps_the_longest_candidate_and_drops_short_tracks():
  store = landmarks.LandmarkStore()
  tracker = landmarks.CropTracker(0, False, store)
  grid = np.stack(np.meshgrid(np.linspace(0, 1, 22), np.linspace(0, 1, 22)), -1).reshape(-1, 2)
  face = np.concatenate([grid[:478] * 40, np.zeros((478, 1))], axis=1)

  def feed(frame, offset):
    points = face + [offset[0], offset[1], 0]
    tracker._assign(frame, points, landmarks.box_of(points) / 200)

  for frame in range(10):
    feed(frame, (20 + frame, 20))                 # one face drifting slowly
    if frame % 3 == 0:
      feed(frame, (150, 150))                     # another, far away, sometimes
    feed(frame, (21 + frame, 20))                 # a duplicate of the first: ignored
  feed(10, (60, 60))                              # a third face: no room for it
  assert tracker.seen_counts == [10, 4]
  track = tracker.finish(num_frames=20)
  assert track.detected.sum() == 10 and not track.detected[10:].any()
  np.testing.assert_allclose(track.landmarks(15)[:, 0], face[:, 0] + 29, atol=1e-4)
  np.testing.assert_allclose(track.landmarks(4)[:, 0], face[:, 0] + 24, atol=1e-4)
  assert landmarks.CropTracker(0, False, store).finish(num_frames=5) is None
  short = landmarks.CropTracker(0, False, store)
  short._assign(0, face, landmarks.box_of(face) / 200)
  assert short.finish(num_frames=6) is None       # 1 of 6 frames < 20%
  store.close()


# ------------------------------------------------------------------------ real videos (TF)

@pytest.fixture(scope="module")
def tracker():
  return pipeline.FaceTracker(pipeline.TrackerOptions())


@pytest.fixture(scope="module")
def follow_tracker(tracker):
  return pipeline.FaceTracker(pipeline.TrackerOptions(crop_mode="follow"),
                              detector=tracker.detector)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
  folder = tmp_path_factory.mktemp("facetrack_videos")
  short = vf.Scene((320, 240), 1.0, vf.ONE_FACE.faces)
  paths = {
      "one_face": vf.write_scene(folder / "one_face.mp4", vf.ONE_FACE, fps=30,
                                 audio=vf.tone(2.0)),
      "two_faces": vf.write_scene(folder / "two_faces.mp4", vf.TWO_FACES, fps=29,
                                  audio=vf.tone(2.0)),
      "leave": vf.write_scene(folder / "leave.mp4", vf.LEAVE_AND_RETURN, fps=29),
      "distractor": vf.write_scene(folder / "distractor.mp4", vf.WITH_DISTRACTOR, fps=29),
      "no_audio": vf.write_scene(folder / "no_audio.mp4", short, fps=25),
      "no_face": vf.write_scene(folder / "no_face.mp4", vf.NO_FACE, fps=29),
      "rotated": vf.write_frames(folder / "rotated.mp4",
                                 [short.frame(n / 30) for n in range(30)],
                                 [n / 30 for n in range(30)], rotation=90),
  }
  return paths


def _source_points(track, frame):
  """The track's alignment landmarks of one frame back in source pixels."""
  inverse = np.linalg.inv(np.vstack([track.transforms_224[frame], [0, 0, 1]]))[:2]
  return align.apply(inverse, align.align_points_224(track.landmarks_224[frame]))


def _face_of(track, scene, source_fps):
  """Which of the scene's faces a track follows (closest at its first detected frame)."""
  frame = int(np.argmax(track.detected))
  truth = scene.points(vf.shown_time(frame, source_fps))
  distances = [np.inf if t is None else np.abs(_source_points(track, frame) - t).mean()
               for t in truth]
  return int(np.argmin(distances))


def alignment_errors(track, scene, face, source_fps, kind="224"):
  """[n, 5] distances between where the track's transforms put the face's true landmarks and
  where the reference alignment of the true (known) motion puts them, with the authors'
  forward smoothing; frames whose smoothing window is not fully visible are skipped."""
  count = track.num_frames
  truth = [scene.points(vf.shown_time(j, source_fps), kind)[face] for j in range(count)]
  reference = align.reference_points_224() if kind == "224" else align.reference_points_112()
  matrices = track.transforms_224 if kind == "224" else track.transforms_112
  errors = []
  for i in range(count):
    start = min(i, count - align.SMOOTHING_WINDOW)
    window = range(start, start + align.SMOOTHING_WINDOW)
    if truth[i] is None or any(truth[k] is None or not track.detected[k] for k in window):
      continue
    expected = align.similarity_matrix(np.mean([truth[k] for k in window], axis=0), reference)
    errors.append(np.linalg.norm(align.apply(matrices[i], truth[i]) -
                                 align.apply(expected, truth[i]), axis=1))
  return np.array(errors)


def test_one_face(tracker, videos, tmp_path):
  tracks = tracker.track(videos["one_face"])
  assert len(tracks) == 1
  track = tracks[0]
  assert track.name == "one_face" and track.track_index == 0
  assert track.num_frames == 58 and track.fps == constants.FPS
  np.testing.assert_allclose(track.timestamps, np.arange(58) / 29)
  assert track.frames_224.shape == (58, 224, 224, 3) and track.frames_224.dtype == np.uint8
  assert track.frames_112.shape == (58, 112, 112, 3)
  assert track.landmarks_224.shape == (58, 478, 3)
  assert track.transforms_224.shape == track.transforms_112.shape == (58, 2, 3)
  assert track.detected.all() and track.source_size == (320, 240)
  assert track.has_audio and track.audio.dtype == np.float32
  assert len(track.audio) == pipeline.audio_samples(58) == 88_200
  errors = alignment_errors(track, vf.ONE_FACE, 0, 30)
  assert len(errors) == 58 and errors.max() < TOLERANCE_PX, errors.max()
  errors_112 = alignment_errors(track, vf.ONE_FACE, 0, 30, kind="112")
  assert errors_112.max() < TOLERANCE_PX / 2, errors_112.max()
  # The aligned points land near the reference (the rest is this face's shape vs the mean).
  residual = np.linalg.norm(align.align_points_224(track.landmarks_224) -
                            align.reference_points_224(), axis=-1)
  assert residual.mean() < 6
  back = tracks_lib.load_sidecar(track.save_sidecar(tmp_path / "one_face.npz"))
  assert back.meta() == track.meta() and back.frames_224 is None
  for name in tracks_lib.SIDECAR_ARRAYS:
    np.testing.assert_array_equal(getattr(back, name), getattr(track, name))


def test_two_faces_give_two_parts(tracker, videos):
  tracks = tracker.track(videos["two_faces"])
  assert [t.name for t in tracks] == ["two_faces@part1", "two_faces@part2"]
  faces = [_face_of(t, vf.TWO_FACES, 29) for t in tracks]
  assert sorted(faces) == [0, 1]
  for track, face in zip(tracks, faces):
    assert track.detected.all()
    errors = alignment_errors(track, vf.TWO_FACES, face, 29)
    assert len(errors) == 58 and errors.max() < TOLERANCE_PX, (track.name, errors.max())


def test_face_that_leaves_and_returns(tracker, videos):
  track, = tracker.track(videos["leave"])
  assert track.num_frames == 70
  times = track.timestamps
  assert not track.detected[(times > 0.85) & (times < 1.35)].any()
  assert track.detected[(times < 0.75) | (times > 1.45)].mean() > 0.95
  errors = alignment_errors(track, vf.LEAVE_AND_RETURN, 0, 29)
  assert len(errors) > 40 and errors.max() < TOLERANCE_PX, errors.max()


def test_small_distractor_is_ignored(tracker, videos):
  tracks = tracker.track(videos["distractor"])
  assert len(tracks) == 1
  assert _face_of(tracks[0], vf.WITH_DISTRACTOR, 29) == 0
  assert alignment_errors(tracks[0], vf.WITH_DISTRACTOR, 0, 29).max() < TOLERANCE_PX


def test_no_audio_and_other_frame_rate(tracker, videos):
  track, = tracker.track(videos["no_audio"])
  assert not track.has_audio and track.audio is None
  assert track.num_frames == 29 and track.detected.all()


def test_rotation_flag(tracker, videos):
  track, = tracker.track(videos["rotated"])
  assert track.source_size == (320, 240)
  short = vf.Scene((320, 240), 1.0, vf.ONE_FACE.faces)
  assert alignment_errors(track, short, 0, 30).max() < TOLERANCE_PX


def test_no_face(tracker, videos):
  with pytest.raises(pipeline.NoFaceError) as error:
    tracker.track(videos["no_face"])
  assert error.value.reason == "no_face" and "no_face.mp4" in str(error.value)


def test_follow_mode_keeps_a_small_fast_face_the_static_crop_loses(
    tracker, follow_tracker, tmp_path):
  # A small face crossing a wide picture, gone for 0.4 s in the middle: the authors' single
  # static crop is mostly background and FaceMesh never finds the face in it.
  scene = vf.Scene((1280, 480), 2.0, (vf.FaceMotion(
      "astronaut", (100, 300, 0.6, -5), (1180, 200, 0.6, 5), visible=((0, 0.8), (1.2, 2.0))),))
  path = vf.write_scene(tmp_path / "crossing.mp4", scene, fps=29)
  with pytest.raises(pipeline.NoFaceError):
    tracker.track(path)
  track, = follow_tracker.track(path)
  visible = np.array([scene.faces[0].is_visible(t) for t in track.timestamps])
  assert track.detected[visible].mean() > 0.95 and not track.detected[~visible].any()
  assert alignment_errors(track, scene, 0, 29).max() < TOLERANCE_PX


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, videos):
  """Inputs the issue lists as bad, with the reason each must report (None: must work)."""
  folder = tmp_path_factory.mktemp("bad_inputs")
  text = folder / "notes.mp4"
  text.write_text("not a video\n" * 50)
  empty = folder / "empty.mp4"
  empty.touch()
  truncated = folder / "truncated.mp4"
  data = videos["no_audio"].read_bytes()
  truncated.write_bytes(data[:len(data) // 2])
  tiny = video_writer.write_video(folder / "tiny.mp4", [vf.NO_FACE.frame(0)[:32, :32]] * 10,
                                  fps=29)
  return {
      text: "not_a_video", empty: "empty_file", truncated: "truncated",
      vf.garbage_video(folder / "garbage.mp4"): "no_frames", tiny: "too_small",
      videos["no_face"]: "no_face",
      vf.write_scene(folder / "4k.mp4", vf.Scene((3840, 2160), 0.3, (vf.FaceMotion(
          "astronaut", (1900, 1000, 3.0, 0), (1950, 1000, 3.0, 0)),)), fps=30): None,
      vf.write_scene(folder / "1fps.mp4", vf.Scene((320, 240), 3.0, vf.ONE_FACE.faces),
                     fps=1): None,
      vf.write_scene(folder / "240fps.mp4", vf.Scene((320, 240), 0.5, vf.ONE_FACE.faces),
                     fps=240): None,
  }


def test_bad_inputs_raise_typed_errors_with_reasons(tracker, bad_inputs):
  for path, reason in bad_inputs.items():
    if reason is None:
      continue
    with pytest.raises(video.VideoError) as error:
      tracker.track(path)
    assert error.value.reason == reason, (path, error.value)
    assert str(path) in str(error.value)


def test_extreme_sizes_and_rates_work(tracker, bad_inputs):
  counts = {"4k": 9, "1fps": 87, "240fps": 15}
  for path, reason in bad_inputs.items():
    if reason is None:
      track, = tracker.track(path)
      assert track.num_frames == counts[path.stem] and track.detected.mean() > 0.9, path


def _manifest(out):
  return {e["input"]: e for e in map(json.loads, (out / "manifest.jsonl").read_text().split(
      "\n")[:-1])}


def test_cli_manifest_outputs_and_resume(videos, bad_inputs, tmp_path):
  source = tmp_path / "in"
  (source / "nested").mkdir(parents=True)
  shutil.copy(videos["no_audio"], source / "nested" / "clip.mp4")
  shutil.copy(videos["two_faces"], source / "pair.mp4")
  for path, reason in bad_inputs.items():
    if reason not in (None, "no_face", "too_small"):
      shutil.copy(path, source / path.name)
  shutil.copy(videos["no_face"], source / "empty_room.mkv")
  (source / "readme.txt").write_text("not an input")
  out = source / "faces"                         # inside the input folder: never an input
  assert cli.main([str(source), "--out", str(out), "--workers", "0"]) == 1
  assert json.loads((out / cli.OPTIONS).read_text())["stride"] == 3
  manifest = _manifest(out)
  assert set(manifest) == {"nested/clip", "pair", "notes", "empty", "truncated", "garbage",
                           "empty_room"}
  expected = {"notes": "not_a_video", "empty": "empty_file", "truncated": "truncated",
              "garbage": "no_frames"}
  for name, reason in expected.items():
    assert manifest[name]["status"] == "error" and manifest[name]["reason"] == reason
    assert manifest[name]["message"]
  assert manifest["empty_room"]["status"] == "no_face"
  clip, pair = manifest["nested/clip"], manifest["pair"]
  assert clip["status"] == pair["status"] == "ok"
  assert clip["frames"] == 29 and clip["fps"] == 29 and clip["has_audio"] is False
  assert set(clip["timings"]) >= {"detect_s", "landmarks_s", "render_s", "total_s"}
  assert [t["mp4"] for t in pair["tracks"]] == ["pair@part1.mp4", "pair@part2.mp4"]
  for name in ("nested/clip", "pair@part1", "pair@part2"):
    assert (out / f"{name}.mp4").is_file()
    track = tracks_lib.load_sidecar(out / f"{name}.npz")
    assert track.landmarks_224.shape[1:] == (478, 3) and track.detected.dtype == bool
    assert video.probe(out / f"{name}.mp4").has_audio == (name != "nested/clip")
  assert video.count_frames(out / "pair@part2.mp4") == 58
  assert not (out / ".partial").exists()

  # A re-run does nothing for inputs that are done, retries the failed ones.
  stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
  assert cli.main([str(source), "--out", str(out), "--workers", "0"]) == 1
  assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == stamps
  assert len((out / "manifest.jsonl").read_text().splitlines()) == 7
  # Outputs on disk count as done even without a manifest (also @partN ones).
  (out / "manifest.jsonl").unlink()
  for path in source.glob("*"):
    if path.name not in ("pair.mp4", "nested"):
      if path.is_file():
        path.unlink()
  assert cli.main([str(source), "--out", str(out), "--workers", "0"]) == 0
  manifest = _manifest(out)
  assert manifest["pair"]["message"] == "outputs already on disk; not re-run"
  assert len(manifest["pair"]["tracks"]) == 2
  assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == stamps


def test_cli_worker_processes(videos, tmp_path):
  source = tmp_path / "in"
  source.mkdir()
  shutil.copy(videos["no_face"], source / "room.mp4")
  (source / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
  out = tmp_path / "out"
  assert cli.main([str(source), "--out", str(out), "--workers", "2"]) == 1
  manifest = _manifest(out)
  assert manifest["room"]["status"] == "no_face"
  assert manifest["broken"]["reason"] == "truncated"
  assert manifest["room"]["worker"] != os.getpid()


def _crashing_task(job, out_dir):
  """A worker task that dies like a native crash on one input (module level: spawned)."""
  if job.video_id == "crash":
    os._exit(3)
  return {"input": job.video_id, "path": job.path, "status": "ok", "tracks": []}


def _no_setup(options, threads, verbose):
  del options, threads, verbose


def test_a_crashing_worker_is_replaced_and_the_input_recorded(tmp_path):
  jobs = [cli.Job(name, f"{name}.mp4") for name in ("first", "crash", "second", "third")]
  manifest = cli.Manifest(tmp_path / "manifest.jsonl")
  results = cli.run(jobs, tmp_path, pipeline.TrackerOptions(), workers=2, manifest=manifest,
                    task=_crashing_task, initializer=_no_setup)
  manifest.close()
  entries = {e["input"]: e for e in results}
  assert set(entries) == {"first", "crash", "second", "third"}
  assert entries["crash"]["status"] == "error"
  assert entries["crash"]["reason"] == "worker_crashed"
  assert all(entries[name]["status"] == "ok" for name in ("first", "second", "third"))
  assert len(_manifest(tmp_path)) == 4


class _PoolBrokenAtSubmit:
  """A pool whose first worker dies on 'crash' and is known dead before the next submit (the
  race CI hit: submit raised BrokenProcessPool); later pools run tasks in this process."""
  pools = 0

  def __init__(self, *args, **kwargs):
    del args, kwargs
    type(self).pools += 1
    self.first = type(self).pools == 1
    self.broken = False

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return False

  def submit(self, fn, job, out_dir):
    future = concurrent.futures.Future()
    if self.broken:
      raise cli.BrokenProcessPool("a child process terminated abruptly")
    if self.first and job.video_id == "crash":
      self.broken = True
      future.set_exception(cli.BrokenProcessPool("a child process terminated abruptly"))
    else:
      future.set_result({"input": job.video_id, "path": job.path, "status": "ok",
                         "tracks": []})
    return future


def test_a_pool_found_broken_at_submit_loses_no_input(tmp_path, monkeypatch):
  monkeypatch.setattr(_PoolBrokenAtSubmit, "pools", 0)   # the first pool of THIS run breaks
  monkeypatch.setattr(cli.concurrent.futures, "ProcessPoolExecutor", _PoolBrokenAtSubmit)
  jobs = [cli.Job(name, f"{name}.mp4") for name in ("crash", "second", "third")]
  manifest = cli.Manifest(tmp_path / "manifest.jsonl")
  results = cli.run(jobs, tmp_path, pipeline.TrackerOptions(), workers=2, manifest=manifest,
                    task=_crashing_task, initializer=_no_setup)
  manifest.close()
  entries = {e["input"]: e for e in results}
  assert set(entries) == {"crash", "second", "third"}
  assert all(entries[name]["status"] == "ok" for name in ("second", "third"))
