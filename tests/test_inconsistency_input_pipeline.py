"""The inconsistency detector's input pipeline: window placement, identity batches, exclusion,
determinism, resumption, host ownership, scoring batches."""
import numpy as np
import pytest
import tensorflow as tf

from data import constants, records
from inconsistency_jax import input_pipeline as ip
from inconsistency_jax import scoring
from inconsistency_jax.configs import model as model_config
from tests import inconsistency_records as fixtures


@pytest.fixture(scope="module")
def spec():
  return ip.WindowSpec.from_model_config(model_config.get_config("tiny"))


@pytest.fixture(scope="module")
def real_shards(tmp_path_factory):
  return fixtures.real_set(tmp_path_factory.mktemp("reals"), identities=6, tracks_per_identity=2,
                           num_frames=60)


@pytest.fixture(scope="module")
def index(real_shards):
  return ip.index_tracks(real_shards)


def test_window_spec_follows_the_model_config(spec):
  # tiny: 0.5-s windows = 14 frames at 29 fps (round half to even), 4 faces, 8000 samples.
  assert (spec.window_frames, spec.frames_per_window, spec.audio_samples) == (14, 4, 8000)
  assert spec.frame_offsets().tolist() == [1, 5, 8, 12]
  assert spec.face_size == constants.IDENTITY_FACE_SIZE


def test_score_window_plan_is_scoring_plan_windows():
  for num_frames in range(0, 200, 3):
    starts, count = ip.plan_starts_tf(tf.constant(num_frames), 14, 6)
    try:
      plan = scoring.plan_windows(num_frames, 14, 6)
    except scoring.TooShortError:
      assert int(count) == 0
      continue
    assert int(count) == plan.num_windows
    np.testing.assert_array_equal(starts.numpy()[:plan.num_windows], plan.starts)


def test_resampling_to_16k_keeps_a_tone_and_the_length():
  t = np.arange(constants.SAMPLE_RATE) / constants.SAMPLE_RATE
  out = ip.resample_to_whisper(np.sin(2 * np.pi * 440 * t))
  assert out.shape == (constants.WHISPER_SAMPLE_RATE,) and out.dtype == np.float32
  expected = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
  np.testing.assert_allclose(out[100:-100], expected[100:-100], atol=2e-3)


def test_index_offsets_read_back_the_exact_records(real_shards, index, tmp_path):
  assert len(index) == 12 and {e.identity for e in index} == {f"id{i:03d}" for i in range(6)}
  stored = {}
  for path in real_shards:
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
      stored[records.parse_track(record)["video/id"].numpy().decode()] = record
  for entry in index:
    assert ip.read_record(entry.file, entry.offset, entry.size) == stored[entry.video_id]
  # The cache gives the same index without reading the shards again.
  first = ip.index_tracks(real_shards, cache_dir=str(tmp_path))
  assert len(list(tmp_path.glob("*.json"))) == 2
  assert ip.index_tracks(real_shards, cache_dir=str(tmp_path)) == first == index


def _sampler(index, spec, **kw):
  args = dict(identities_per_batch=4, num_windows=3, seed=0)
  args.update(kw)
  return ip.TrainSampler(index, spec, **args)


def test_batches_hold_distinct_identities_and_non_overlapping_windows(index, spec):
  sampler = _sampler(index, spec)
  assert sampler.steps_per_epoch == 1  # 6 identities // 4
  for step in range(20):
    plan = sampler.plan(step)
    assert len({p.entry.identity for p in plan}) == 4
    for p in plan:
      assert np.all(np.diff(p.starts) >= spec.window_frames)
      assert p.starts[0] >= 0 and p.starts[-1] + spec.window_frames <= p.entry.num_frames


def test_sampling_is_a_function_of_seed_and_step(index, spec):
  def describe(sampler, step):
    return [(p.entry.video_id, p.starts.tolist(), p.flips.tolist()) for p in sampler.plan(step)]
  a, b, c = _sampler(index, spec), _sampler(index, spec), _sampler(index, spec, seed=1)
  assert [describe(a, s) for s in range(5)] == [describe(b, s) for s in range(5)]
  assert [describe(a, s) for s in range(5)] != [describe(c, s) for s in range(5)]


def test_excluded_identities_never_enter_training(index, spec, tmp_path):
  exclusion = tmp_path / "exclude.txt"
  exclusion.write_text("# FakeAVCeleb ids\nid001\nid004.mp4\n")
  excluded = ip.read_exclusions(str(exclusion))
  assert excluded == {"id001", "id004"}
  sampler = _sampler(index, spec, excluded=excluded, identities_per_batch=2)
  assert sampler.dropped == {"excluded identity": 4}
  seen = {p.entry.identity for step in range(50) for p in sampler.plan(step)}
  assert seen == {"id000", "id002", "id003", "id005"}


def test_fakeavceleb_metadata_is_an_exclusion_list(tmp_path):
  meta = tmp_path / "meta_data.csv"
  meta.write_text("source,target1,target2,method,category,type,race,gender,path,\n"
                  "id00076,-,-,real,A,RealVideo-RealAudio,African,men,00109.mp4,"
                  "FakeAVCeleb/RealVideo-RealAudio/African/men/id00076\n"
                  "id00166,id00076,-,wav2lip,C,FakeVideo-RealAudio,African,men,00010_id00076"
                  "_wavtolip.mp4,FakeAVCeleb/FakeVideo-RealAudio/African/men/id00166\n")
  assert ip.read_exclusions(str(meta)) == {"id00076", "id00166"}


def test_too_few_identities_fail_before_training(index, spec):
  with pytest.raises(ip.InputError, match=r"hold 6 identities .* needs 8 distinct"):
    _sampler(index, spec, identities_per_batch=8)
  with pytest.raises(ip.InputError, match=r"hold 0 identities .*shorter than T x W"):
    _sampler(index, spec, num_windows=5)  # 5 x 14 = 70 > 67 frames


def test_tracks_without_audio_or_real_label_are_left_out(tmp_path, spec):
  tracks = [(fixtures.track_arrays(i, 50, seed=i), fixtures.meta(f"v{i}", f"id{i}"))
            for i in range(3)]
  tracks.append((fixtures.track_arrays(3, 50, audio=False), fixtures.meta("v3", "id3")))
  tracks.append((fixtures.track_arrays(4, 50), fixtures.meta("v4", "id4", label=1)))
  sampler = _sampler(ip.index_tracks(fixtures.write_shards(tmp_path, tracks, 1)), spec,
                     identities_per_batch=3)
  assert sampler.identities == ["id0", "id1", "id2"]
  assert sampler.dropped == {"no audio": 1, "fake": 1}


def test_batches_hold_the_planned_frames_and_audio(index, spec):
  sampler = _sampler(index, spec, flip_prob=0.0)
  batch = next(ip.train_dataset(sampler, start_step=0, num_steps=1).as_numpy_iterator())
  assert batch["faces"].shape == (4, 3, 4, 112, 112, 3) and batch["faces"].dtype == np.uint8
  assert batch["audio"].shape == (4, 3, 8000) and batch["audio"].dtype == np.float32
  for i, p in enumerate(sampler.plan(0)):
    frames = p.starts[:, None] + spec.frame_offsets()[None, :]
    markers = batch["faces"][i, :, :, 4:12, 4:12].mean(axis=(-3, -2, -1))
    np.testing.assert_allclose(markers, 2 * frames, atol=3)
    # The audio is 0.02 * t plus a tone of mean zero: its mean gives the window's time.
    mid = (p.starts / constants.FPS + 0.25)
    np.testing.assert_allclose(batch["audio"][i].mean(axis=-1), 0.02 * mid, atol=2e-3)


def test_flips_mirror_the_planned_windows(index, spec):
  plain = _sampler(index, spec, flip_prob=0.0)
  flipped = _sampler(index, spec, flip_prob=1.0)
  a = next(ip.train_dataset(plain, start_step=0, num_steps=1).as_numpy_iterator())
  b = next(ip.train_dataset(flipped, start_step=0, num_steps=1).as_numpy_iterator())
  assert [p.entry for p in plain.plan(0)] == [p.entry for p in flipped.plan(0)]
  np.testing.assert_array_equal(a["faces"][..., ::-1, :], b["faces"])


def test_a_resumed_stream_repeats_the_uninterrupted_batches(index, spec):
  sampler = _sampler(index, spec, identities_per_batch=2)
  full = list(ip.train_dataset(sampler, start_step=0, num_steps=5).as_numpy_iterator())
  resumed = list(ip.train_dataset(sampler, start_step=3, num_steps=5).as_numpy_iterator())
  assert len(full) == 5 and len(resumed) == 2
  for x, y in zip(full[3:], resumed):
    np.testing.assert_array_equal(x["faces"], y["faces"])
    np.testing.assert_array_equal(x["audio"], y["audio"])


def test_identities_shared_by_hosts_belong_to_the_first():
  hosts = [["a", "b", "c"], ["c", "d"], ["b", "d", "e", "f"]]

  def gather(x):  # what process_allgather returns when every host passes its own array
    if x.shape == (1,):
      return np.array([[len(h)] for h in hosts])
    rows = np.full((len(hosts), x.shape[0]), -1, np.int64)
    for k, h in enumerate(hosts):
      rows[k, :len(h)] = [ip._identity_hash(i) for i in sorted(h)]  # noqa: SLF001
    return rows

  owned = [ip.owned_identities(h, k, gather) for k, h in enumerate(hosts)]
  assert owned == [{"a", "b", "c"}, {"d"}, {"e", "f"}]
  assert ip.owned_identities(["x", "y"], 0) == {"x", "y"}  # one process: nothing to resolve


def test_score_batches_place_windows_and_flag_short_and_silent_tracks(tmp_path, spec):
  tracks = [(fixtures.track_arrays(0, 120), fixtures.meta("long", "id0", category="RVRA")),
            (fixtures.track_arrays(1, 40, audio=False), fixtures.meta("silent", "id1")),
            (fixtures.track_arrays(2, 20), fixtures.meta("tiny", "id2", label=1))]
  files = fixtures.write_shards(tmp_path, tracks, 1, prefix="test")
  batches = list(ip.score_dataset(files, spec, num_windows=6, batch_size=4).as_numpy_iterator())
  assert len(batches) == 1
  b = batches[0]
  assert b["faces"].shape == (4, 6, 4, 112, 112, 3) and b["mask"].tolist() == [1, 1, 1, 0]
  assert b["num_windows"].tolist()[:3] == [6, 2, 0]
  np.testing.assert_array_equal(b["starts"][0], scoring.plan_windows(120, 14, 6).starts)
  assert b["has_audio"].tolist()[:3] == [True, False, True]
  assert not b["audio"][1].any() and not b["faces"][1, 2:].any()
  assert b["video_id"][0] == b"long" and b["category"][0] == b"RVRA" and b["label"][2] == 1
  assert b["motion"][0] > 0 and np.isfinite(b["motion"][:3]).all()
  # Serialized records (single-video commands) go the same way.
  serialized = [records.serialize_track(a, m) for a, m in tracks[:1]]
  one = next(ip.score_dataset(serialized, spec, num_windows=6, batch_size=2).as_numpy_iterator())
  np.testing.assert_array_equal(one["faces"][0], b["faces"][0])
