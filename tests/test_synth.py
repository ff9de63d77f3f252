"""The synthetic set (data.synth): its signals, layouts, determinism and argument checks.

Ground-truth claims are checked on the rendered mp4 files with independent tools: MediaPipe
FaceMesh measures the mouth, MTCNN finds faces, PyAV decodes. One tiny FakeAVCeleb set is
generated per session and shared.
"""
import csv
import dataclasses
import json
import pathlib
import re
import subprocess
import sys
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from data.synth import __main__ as synth_main
from data.synth import fakes
from data.synth import identities
from data.synth import layouts
from data.synth import manipulations
from data.synth import photos
from data.synth import pipeline
from data.synth import plan as plan_lib
from data.synth import render
from data.synth import soundtrack
from data.synth import verify
from data.synth import voice
from data.synth import warp

TINY = dict(identities=4, videos_per_identity=1, fakes_per_video=8, min_seconds=2.0,
            max_seconds=2.5, max_height=360, workers=2, seed=7)
MISMATCHED_KINDS = ("rvfa", "lipsync")
_ground_truth = verify.ground_truth
_frames = verify.decode_frames


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory) -> pathlib.Path:
  out = tmp_path_factory.mktemp("synth")
  summary = pipeline.generate(pipeline.Config(out=out, layout="fakeavceleb", **TINY))
  assert not summary.failures, summary.failures
  return summary.root


# --------------------------------------------------------------------------- layout


def test_fakeavceleb_metadata_has_the_release_format(tiny_set):
  text = (tiny_set / "meta_data.csv").read_text(encoding="utf-8")
  # Nine names and a trailing comma: ten columns, the last unnamed (pandas: "Unnamed: 9").
  assert text.splitlines()[0] == "source,target1,target2,method,category,type,race,gender,path,"
  with open(tiny_set / "meta_data.csv", newline="") as handle:
    header, *rows = list(csv.reader(handle))
  assert len(header) == 10 and header[-1] == "" and all(len(row) == 10 for row in rows)
  table = [dict(zip(header[:9] + ["folder"], row)) for row in rows]
  pairs = {("A", "RealVideo-RealAudio"), ("B", "RealVideo-FakeAudio"),
           ("C", "FakeVideo-RealAudio"), ("D", "FakeVideo-FakeAudio")}
  assert {(row["category"], row["type"]) for row in table} == pairs
  assert {row["method"] for row in table} == {"real", "rtvc", "faceswap", "fsgan", "wav2lip",
                                              "faceswap-wav2lip", "fsgan-wav2lip"}
  categories = [row["category"] for row in table]
  assert categories == sorted(categories)  # grouped A, B, C, D like the release
  listed = set()
  for row in table:
    if row["category"] == "A":
      assert row["target1"] == row["target2"] == "-"
    else:
      assert re.fullmatch(r"id\d{5}", row["target1"]), row
    assert row["folder"] == (f"FakeAVCeleb/{row['type']}/{row['race']}/{row['gender']}/"
                             f"{row['source']}")
    path = tiny_set / row["folder"].split("/", 1)[1] / row["path"]
    assert path.is_file(), path
    listed.add(path)
    if row["category"] == "B":
      assert row["path"].endswith("_fake.mp4")
    if "wav2lip" in row["method"]:
      assert row["path"].endswith("_wavtolip.mp4")
  assert listed == set(tiny_set.rglob("*.mp4"))  # every video listed, nothing else on disk


def test_fakes_match_their_real_in_resolution_fps_length_and_codecs(tiny_set):
  rows = _ground_truth(tiny_set)
  by_path = {row["path"]: row for row in rows}
  for row in rows:
    real = by_path[row["real_path"]]
    for field in ("width", "height", "fps", "num_frames"):
      assert row[field] == real[field], (row["path"], field)
    with av.open(str(tiny_set / row["path"])) as container:
      video, audio = container.streams.video[0], container.streams.audio[0]
      assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
      assert (video.width, video.height) == (int(row["width"]), int(row["height"]))
      assert video.average_rate == Fraction(row["fps"])
      assert video.frames == int(row["num_frames"])
  heights = {int(row["height"]) for row in rows}
  assert heights <= {240, 360} and len(heights) > 1
  assert {row["num_people"] for row in rows} == {"1", "2"}


@pytest.mark.parametrize("count,val_fraction,val_videos,test_videos", [
    (36, 0.17, 36, 42),    # the demo's plan (tools/demo.sh)
    (32, 0.1, 18, 36),     # the default fractions
])
def test_every_split_holds_every_fake_kind(count, val_fraction, val_videos, test_videos):
  """Two videos of each identity, 2 fakes each, seed 3, no rendering: every split's fakes
  cover all 8 kinds (the kinds once rotated over the whole set and the validation split held 4
  of them, so a calibration fitted on it never saw the others)."""
  recipes = identities.sample_recipes(count, 3, set(photos.photo_names()), val_fraction)
  reals = plan_lib.real_plans(recipes, 2, 3, 2.0, 4.0, 360)
  kinds = {}
  for entry in layouts.fakeavceleb_entries(reals, recipes, 3, 2):
    kinds.setdefault(entry.video.real.split, []).append(entry.video.kind)
  for split in ("train", "val", "test"):
    assert set(kinds[split]) == {"real", *layouts.FAKEAVCELEB_KINDS}, split
  assert kinds["val"].count("real") * 3 == len(kinds["val"]) == val_videos
  assert len(kinds["test"]) == test_videos
  counts = [kinds["test"].count(k) for k in layouts.FAKEAVCELEB_KINDS]
  assert min(counts) >= 3


def test_val_fraction_moves_identities_between_train_and_val_only():
  usable = set(photos.photo_names())
  default = [r.split for r in identities.sample_recipes(36, 3, usable)]
  larger = [r.split for r in identities.sample_recipes(36, 3, usable, 0.17)]
  assert (default.count("val"), larger.count("val")) == (4, 6)
  assert [i for i, s in enumerate(default) if s == "test"] == [
      i for i, s in enumerate(larger) if s == "test"]
  assert {s for d, s in zip(default, larger) if d != s} == {"val"}


def test_donors_come_from_the_same_identity_split(tiny_set):
  splits = {row["identity_id"]: row["split"] for row in
            csv.DictReader(open(tiny_set / layouts.IDENTITIES_FILE, newline=""))}
  assert {"train", "test"} <= set(splits.values())
  for row in _ground_truth(tiny_set):
    for field in ("face_donor", "voice_identity", "mouth_driver"):
      if row[field]:
        assert splits[row[field]] == row["split"] == splits[row["source_id"]], (row, field)


def test_faceforensics_layout_and_splits(tmp_path):
  summary = pipeline.generate(pipeline.Config(
      out=tmp_path, layout="faceforensics", identities=2, videos_per_identity=1,
      fakes_per_video=5, min_seconds=2.0, max_seconds=2.0, max_height=240, workers=2, seed=1))
  root = summary.root
  assert root.name == "FaceForensics++" and not summary.failures
  originals = sorted(p.name for p in (root / "original_sequences/youtube/c23/videos").iterdir())
  assert originals == ["000.mp4", "001.mp4"]
  train = (root / "splits" / "train.json").read_text()
  assert train == json.dumps([["000", "001"]], indent=2) or train == json.dumps(
      [["001", "000"]], indent=2)
  assert json.loads((root / "splits" / "test.json").read_text()) == []
  for method in layouts.FACEFORENSICS_METHODS:
    names = sorted(p.name for p in (root / "manipulated_sequences" / method / "c23" /
                                    "videos").iterdir())
    assert names == ["000_001.mp4", "001_000.mp4"], method
  rows = {row["path"]: row for row in _ground_truth(root)}
  assert len(rows) == 12
  for path, row in rows.items():
    if row["label"] == "1":
      target, source = pathlib.Path(path).stem.split("_")
      assert row["real_path"].endswith(f"/{target}.mp4")
      assert row["ff_source_path"].endswith(f"/{source}.mp4")


# --------------------------------------------------------------------------- signals


def test_mouth_follows_the_audio_in_reals_but_not_in_mismatched_fakes(tiny_set):
  measured = {}
  for row in _ground_truth(tiny_set):
    if row["num_people"] != "1" or row["kind"] not in ("real",) + MISMATCHED_KINDS:
      continue
    r, found = verify.lip_sync(tiny_set / row["path"], Fraction(row["fps"]))
    assert found > 0.95, row["path"]
    measured.setdefault(row["kind"], []).append(r)
  assert min(measured["real"]) > 0.5, measured
  for kind in MISMATCHED_KINDS:
    assert max(abs(r) for r in measured[kind]) < 0.2, measured


def test_ground_truth_design_sync(tiny_set):
  for row in _ground_truth(tiny_set):
    r = float(row["design_sync_r"])
    if row["num_people"] == "1" and row["kind"] == "real":
      assert r > 0.8, row
    if row["num_people"] == "1" and row["kind"] in MISMATCHED_KINDS:
      assert abs(r) < 0.1, row


def _mtcnn_hit_rates(root: pathlib.Path, frames_per_video: int | None) -> dict[str, float]:
  from mtcnn import MTCNN
  detector = MTCNN()
  return {row["path"]: verify.mtcnn_hit_rate(root / row["path"], int(row["num_people"]),
                                             count=frames_per_video, detector=detector)
          for row in _ground_truth(root)}


def test_mtcnn_finds_every_face_in_sampled_frames_of_every_video(tiny_set):
  rates = _mtcnn_hit_rates(tiny_set, frames_per_video=4)
  assert min(rates.values()) >= 0.95, {p: r for p, r in rates.items() if r < 0.95}


@pytest.mark.slow
def test_mtcnn_finds_every_face_in_all_frames_of_every_video(tiny_set):
  rates = _mtcnn_hit_rates(tiny_set, frames_per_video=None)
  assert min(rates.values()) >= 0.95, {p: r for p, r in rates.items() if r < 0.95}


@pytest.fixture(scope="module")
def bank():
  recipes = identities.sample_recipes(2, 5, set(photos.photo_names()))
  landmarks = photos.find_landmarks(identities.needed_photos(recipes))
  return identities.IdentityBank(recipes, landmarks), recipes


@pytest.mark.parametrize("engine", ["soft", "sharp"])
def test_a_swap_changes_the_face_region_only(bank, engine):
  bank, recipes = bank
  real = plan_lib.real_plans(recipes, 1, 5, 2.0, 2.0)[0]
  person = real.plan.people[0]
  donor = next(r.identity_id for r in recipes if r.identity_id != person.identity)
  swapped = dataclasses.replace(person, face_donor=donor, swap_engine=engine,
                                manipulation_seed=3)
  fps, frames = float(real.plan.fps), real.plan.num_frames
  original = manipulations.PersonRenderer(person, bank, fps, frames)
  fake = manipulations.PersonRenderer(swapped, bank, fps, frames)
  portrait = bank.portrait(person.identity)
  oval = portrait.landmarks[list(photos.FACE_OVAL)]
  around_face = np.zeros(portrait.alpha.shape, np.uint8)
  cv2.fillPoly(around_face, [np.round(oval.mean(0) + 1.2 * (oval - oval.mean(0))).astype(
      np.int32)], 1)
  inner_face = portrait.face_mask > 0.5
  for index in (0, frames // 2):
    difference = np.abs(original.frame(index).astype(int) - fake.frame(index)).max(axis=2)
    assert not difference[around_face == 0].any(), "pixels changed away from the face"
    assert difference[inner_face].mean() > 4, "the face did not change"


def test_rvfa_and_lipsync_keep_the_video_or_the_audio(bank):
  bank, recipes = bank
  by_id = {r.identity_id: r for r in recipes}
  real = plan_lib.real_plans(recipes, 1, 5, 2.0, 2.0)[0]
  rvfa = fakes.make_fake(real, "rvfa", by_id, 5, 0)
  unseeded = [dataclasses.replace(person, manipulation_seed=0) for person in rvfa.plan.people]
  assert unseeded == list(real.plan.people)  # same face, same mouth, same motion
  assert rvfa.plan.speech[0].utterance != real.plan.speech[0].utterance
  assert rvfa.voice_donor != real.identity
  lipsync = fakes.make_fake(real, "lipsync", by_id, 5, 0)
  assert lipsync.plan.speech == real.plan.speech  # same audio
  assert lipsync.person.mouth != real.plan.people[0].mouth


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_metadata_and_frames(tmp_path):
  config = dict(identities=2, videos_per_identity=1, fakes_per_video=2, min_seconds=2.0,
                max_seconds=2.0, max_height=240, seed=11)
  first = pipeline.generate(pipeline.Config(out=tmp_path / "a", workers=2, **config)).root
  # A longer path and another worker count change what the processes allocate.
  second = pipeline.generate(pipeline.Config(out=tmp_path / "second_run_elsewhere", workers=1,
                                             **config)).root
  for name in ("meta_data.csv", layouts.GROUND_TRUTH_FILE, layouts.IDENTITIES_FILE):
    assert (first / name).read_bytes() == (second / name).read_bytes(), name
  videos = sorted(p.relative_to(first) for p in first.rglob("*.mp4"))
  assert videos == sorted(p.relative_to(second) for p in second.rglob("*.mp4"))
  for video in videos:
    a, b = _frames(first / video), _frames(second / video)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b)), video
  other = pipeline.generate(pipeline.Config(out=tmp_path / "c", workers=2,
                                            **{**config, "seed": 12})).root
  assert (other / "meta_data.csv").read_bytes() != (first / "meta_data.csv").read_bytes()


def test_encoding_does_not_depend_on_what_the_process_did_before(tmp_path, bank):
  """Regression: libx264's mbtree made identical frames encode differently run to run."""
  bank, recipes = bank
  real = plan_lib.real_plans(recipes, 1, 5, 2.0, 2.0, 240)[0]
  rng = np.random.default_rng()
  encoded = []
  for attempt in range(3):
    junk = [bytearray(rng.bytes(int(n))) for n in rng.integers(1_000, 400_000, 30)]
    del junk  # leaves the heap holding different bytes before each encode
    render.render_video(real.plan, bank, tmp_path / f"attempt{attempt}.mp4")
    with av.open(str(tmp_path / f"attempt{attempt}.mp4")) as container:
      encoded.append(b"".join(bytes(packet) for packet in container.demux(video=0)))
  assert encoded[0] == encoded[1] == encoded[2]


# --------------------------------------------------------------------------- arguments


def _validate(*arguments: str) -> None:
  pipeline.validate(synth_main.build_config(synth_main.parse_args(list(arguments))))


@pytest.mark.parametrize("arguments, message", [
    (["--identities", "0"], "--identities must be at least 2"),
    (["--val-fraction", "0.7"], "--val-fraction must be between 0 and 0.5"),
    (["--videos-per-identity", "0"], "--videos-per-identity must be at least 1"),
    (["--min-seconds", "-1"], "--min-seconds must be between"),
    (["--min-seconds", "5", "--max-seconds", "3"], "--max-seconds must be between"),
    (["--fakes-per-video", "9"], "--fakes-per-video must be between 0 and 8"),
    (["--layout", "faceforensics", "--identities", "600", "--videos-per-identity", "2"],
     "numbers originals 000-999"),
    (["--max-height", "100"], "--max-height must be at least 240"),
    (["--workers", "0"], "--workers must be at least 1"),
])
def test_impossible_arguments_fail_before_any_work(tmp_path, arguments, message):
  out = tmp_path / "out"
  with pytest.raises(pipeline.SynthError, match=message):
    _validate("--out", str(out), *arguments)
  assert not out.exists()


def test_unwritable_output_fails_before_any_work(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  with pytest.raises(pipeline.SynthError, match="is a file, not a directory"):
    _validate("--out", str(blocker / "sub"))
  with pytest.raises(pipeline.SynthError, match="exists and is not a directory"):
    _validate("--out", str(blocker))


def test_an_existing_dataset_is_not_overwritten_by_accident(tmp_path):
  root = tmp_path / layouts.FAKEAVCELEB_ROOT
  root.mkdir()
  (root / "meta_data.csv").write_text("keep me")
  with pytest.raises(pipeline.SynthError, match="--overwrite"):
    _validate("--out", str(tmp_path))
  assert (root / "meta_data.csv").read_text() == "keep me"
  _validate("--out", str(tmp_path), "--overwrite")  # allowed when asked for


def test_command_line_reports_errors_in_plain_words(tmp_path):
  result = subprocess.run([sys.executable, "-m", "data.synth", "--out", str(tmp_path),
                           "--identities", "0"], capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert "--identities must be at least 2" in result.stderr
  assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- pieces


def test_piecewise_affine_warp_reproduces_a_global_affine_map():
  rng = np.random.default_rng(0)
  source = np.concatenate([rng.uniform(20, 80, (25, 2)),
                           warp.border_anchors(100, 100)]).astype(np.float32)
  matrix = np.array([[1.05, 0.04, -2.0], [-0.03, 0.97, 1.5]], np.float32)
  target = warp.apply_affine(matrix, source)
  map_x, map_y = warp.piecewise_affine_maps(source, target, warp.triangulate(target),
                                            (10, 10, 90, 90))
  ys, xs = np.mgrid[10:90, 10:90].astype(np.float32)
  inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
  expected = warp.apply_affine(inverse, np.stack([xs.ravel(), ys.ravel()], 1))
  np.testing.assert_allclose(map_x.ravel(), expected[:, 0], atol=1e-3)
  np.testing.assert_allclose(map_y.ravel(), expected[:, 1], atol=1e-3)


def test_voice_loudness_follows_the_syllables_and_is_deterministic():
  rng = np.random.default_rng(4)
  speaker = voice.Voice.sample(rng, "women")
  utterance = voice.sample_utterance(rng, "u", 3.0, speaker.rate)
  audio = voice.synthesize(utterance, speaker, 44_100, seed=9)
  assert audio.shape == (3 * 44_100,) and np.isfinite(audio).all()
  np.testing.assert_array_equal(audio, voice.synthesize(utterance, speaker, 44_100, seed=9))
  loudness = soundtrack.frame_rms(audio, 25.0, 75)
  assert voice.correlation(loudness, utterance.loudness_track(25.0, 75)) > 0.8
  assert voice.correlation(utterance.mouth_track(25.0, 75),
                           utterance.loudness_track(25.0, 75)) > 0.8
