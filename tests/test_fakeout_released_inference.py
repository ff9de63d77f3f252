"""FakeOut's released-mode evaluation inputs against the ORIGINAL code's (issue #20).

Fixture: tests/fixtures/fakeout_release, written by tools/make_fakeout_release_fixtures.py.
``single.mp4`` (one face, 3.0 s, mono AAC) and ``duo@part1.mp4`` (the first track of a
multi-face video) are face-track files written as data.facetrack writes them; ``original.npz``
is what the ORIGINAL FakeOut made of them (its data_preparation with FFmpeg 5.1, its tfds
builder under tensorflow-datasets 4.3.0, its evaluation sampler and define_usable_audio): frame
indices, audio offsets, wav lengths, the wav's first channel and the spectrograms its forward_fn
receives.

The project's side walks its own path: the track file decoded with PyAV (data.video), one
record (data.records, with data.prepare's codec fields), ``input_pipeline.eval_example``.

Tolerances. Frame indices, audio offsets and wav lengths: exact. Spectrograms of the same wav
samples: 1e-3 dB. Spectrograms from the project's records: the record holds PyAV's decode on
the wav's 16-bit grid (records.released_pcm_scale), but PyAV's FFmpeg and the system's FFmpeg
5.1 decode AAC with float differences that flip a handful of 16-bit samples (4 of 133120
here), which moves cells near the 80 dB floor. Measured: max 0.0005 dB on cells at or above
-40 dB, 0.063 dB overall, mean 5e-5 dB; bounded at 1e-3 dB (cells >= -40 dB), 0.1 dB (all)
and 5e-4 dB mean. Each bound is missed by the bug it guards against: the old audio-length rule
(tens of dB), a zero-padded instead of decoded tail (0.4 dB), the v1 PCM grid (1 dB).
Logits (the project's network on the two spectrogram sets, a FakeOut-layout checkpoint with
random weights): within 1e-4 of their scale.
"""
import pathlib

import jax
import numpy as np
import pytest
import tensorflow as tf

from data import constants
from data import prepare
from data import records
from data import video
from data.facetrack import pipeline
from fakeout_jax import checkpoints
from fakeout_jax import input_pipeline
from fakeout_jax import models
from fakeout_jax.configs import model as model_config
from tests import fakeout_legacy_pickles as legacy
from tests import mmv_haiku_reference as reference

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "fakeout_release"
TRACKS = {"single": 1, "duo@part1": 2}   # track name -> tracks of its video
SPECTROGRAM_TOLERANCE_DB = 1e-3
RECORD_LOUD_DB, RECORD_LOUD_MAX_DB = -40.0, 1e-3
RECORD_MAX_DB, RECORD_MEAN_DB = 0.1, 5e-4
LOGIT_RELATIVE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def original():
  with np.load(FIXTURES / "original.npz") as data:
    return {key: data[key] for key in data.files}


def _key(name):
  return name.replace("@", "_at_")


def _track_record(name, with_codec=True, **overrides):
  """The track file as data.prepare would record it: PyAV frames and audio, codec fields."""
  path = FIXTURES / f"{name}.mp4"
  frames = np.stack([frame.image for frame in video.iter_frames(path)])
  count = len(frames)
  audio = pipeline.fit_length(video.read_audio(path, end=count / constants.FPS),
                              pipeline.audio_samples(count))
  codec = prepare.source_audio_codec(path, audio) if with_codec else {}
  codec.update(overrides)
  arrays = records.TrackArrays(frames_224=frames, timestamps=np.arange(count) / constants.FPS,
                               detected=np.ones(count, bool), fps=constants.FPS, audio=audio,
                               **codec)
  meta = records.TrackMetadata(video_id=name.split("@")[0], dataset="fixture", label=0,
                               track_name=name, num_tracks=TRACKS[name])
  return records.serialize_track(arrays, meta)


@pytest.fixture(scope="module")
def parsed():
  return {name: records.parse_track(tf.constant(_track_record(name))) for name in TRACKS}


def _config(**overrides):
  c = input_pipeline.get_config()
  c.update(overrides)
  return c


def _audio_starts(record, c):
  audio = input_pipeline.released_audio(record)
  return len(audio), input_pipeline.linspace_starts(tf.shape(audio)[0], c.audio_window,
                                                    c.eval_num_clips).numpy()


def test_source_codec_fields_of_an_aac_track():
  path = FIXTURES / "single.mp4"
  audio = np.zeros(132300, np.float32)
  fields = prepare.source_audio_codec(path, audio)
  assert (fields["audio_codec"], fields["audio_frame_size"]) == ("aac", 1024)
  assert len(fields["audio_tail"]) == 133120 - 132300   # to the end of the 130th AAC frame
  assert np.abs(fields["audio_tail"]).max() > 0          # the decoded tail, not padding


@pytest.mark.parametrize("name", list(TRACKS))
def test_frame_indices_audio_offsets_and_wav_length_are_the_released_ones(
    name, original, parsed):
  record, c, key = parsed[name], _config(), _key(name)
  length = len(record["image/encoded"])
  assert length == original[f"{key}/video_length"]
  starts = input_pipeline.linspace_starts(length, c.num_frames * c.frame_stride,
                                          c.eval_num_clips)
  indices = input_pipeline.looped_indices(length, starts, c.num_frames, c.frame_stride).numpy()
  np.testing.assert_array_equal(indices, original[f"{key}/frame_indices"])
  if name == "single":  # the @part track's wav is the builder's dummy, not the track's
    # eval_example takes exactly those frames.
    example = input_pipeline.eval_example(record, c)
    frames = records.decode_frames(record["image/encoded"]).numpy()
    np.testing.assert_allclose(example["video"].numpy(), frames[indices] / 255.0, atol=1e-6)
    wav_length, offsets = _audio_starts(record, c)
    assert wav_length == original[f"{key}/wav_length"] == 133120
    np.testing.assert_array_equal(offsets, original[f"{key}/audio_offsets"])


def test_spectrograms_of_the_released_wav_samples_within_1e3_db(original, parsed):
  """The same samples the original read: window placement and front end are exact."""
  record = dict(parsed["single"])
  wav = original["single/wav_channel0"].astype(np.float32) / 32768.0
  count = len(record["audio"])
  record["audio"], record["audio/tail"] = tf.constant(wav[:count]), tf.constant(wav[count:])
  spectrogram = input_pipeline.eval_example(record, _config())["audio"].numpy()[..., 0]
  error = np.abs(spectrogram - original["single/spectrogram"]).max()
  assert error <= SPECTROGRAM_TOLERANCE_DB, f"{error:.3g} dB"


def _record_spectrograms(record, **config):
  return input_pipeline.eval_example(record, _config(**config))["audio"].numpy()[..., 0]


def test_spectrograms_from_records_within_the_quantisation_bound(original, parsed):
  expected = original["single/spectrogram"]
  error = np.abs(_record_spectrograms(parsed["single"]) - expected)
  loud = error[expected >= RECORD_LOUD_DB]
  assert loud.size > 1000 and loud.max() <= RECORD_LOUD_MAX_DB, f"{loud.max():.3g} dB"
  assert error.max() <= RECORD_MAX_DB and error.mean() <= RECORD_MEAN_DB, (
      f"max {error.max():.3g} dB, mean {error.mean():.3g} dB")
  # The bounds catch the old rule (windows over the track's own 132300 samples), which a v1
  # record or a source without codec frames still gets ...
  plain = records.parse_track(tf.constant(_track_record("single", with_codec=False)))
  old = np.abs(_record_spectrograms(plain) - expected)
  assert old[expected >= RECORD_LOUD_DB].max() > 10.0 and old.mean() > 0.1
  # ... a tail of zeros instead of the decoded one, and the v1 16-bit grid.
  zero_tail = dict(parsed["single"])
  zero_tail["audio/tail"] = tf.zeros_like(zero_tail["audio/tail"])
  assert np.abs(_record_spectrograms(zero_tail) - expected).max() > 2 * RECORD_MAX_DB
  v1_grid = records.parse_track(tf.constant(_track_record(
      "single", audio_pcm_scale=records.PCM_SCALE)))
  assert np.abs(_record_spectrograms(v1_grid) - expected).max() > 5 * RECORD_MAX_DB


def test_multi_face_track_is_silent_as_released_or_keeps_its_audio(original, parsed):
  record = parsed["duo@part1"]
  expected = original["duo_at_part1/spectrogram"]
  assert not expected.any()   # the released builder scored it with the silent dummy
  np.testing.assert_array_equal(_record_spectrograms(record), expected)
  own = _record_spectrograms(record, multi_face_audio="own")
  assert own.min() < -20.0    # a real spectrogram (dB below its max)
  # A single-face track is unaffected by the switch.
  np.testing.assert_array_equal(_record_spectrograms(parsed["single"], multi_face_audio="own"),
                                _record_spectrograms(parsed["single"]))
  with pytest.raises(ValueError, match="multi_face_audio"):
    _record_spectrograms(record, multi_face_audio="silence")


def _strip_v2(serialized: bytes) -> bytes:
  """The same record as schema v1 wrote it: no v2 keys, schema_version 1."""
  example = tf.train.SequenceExample.FromString(serialized)
  for key in ("track/name", "audio/codec", "audio/frame_size", "audio/tail_pcm_s16le"):
    del example.context.feature[key]
  example.context.feature["schema_version"].int64_list.value[:] = [1]
  return example.SerializeToString()


def test_v1_records_are_read_with_the_old_audio_length_and_the_track_count_rule():
  for name in TRACKS:
    v1 = records.parse_track(tf.constant(_strip_v2(_track_record(name))))
    assert int(v1["schema_version"]) == 1 and v1["audio/tail"].shape == (0,)
    assert len(input_pipeline.released_audio(v1)) == len(v1["audio"])
    assert bool(input_pipeline.released_silent_track(v1)) == (TRACKS[name] > 1)


def test_only_aac_gets_whole_codec_frames():
  """MP3's ffmpeg wav is not whole frames (encoder and decoder delays; measured with FFmpeg
  5.1: 133679 samples for 133120 in), so such a source keeps the track's own length."""
  count = 132300
  for codec, frame_size, expected in (("aac", 1024, 133120), ("mp3float", 1152, count),
                                      ("", 0, count)):
    arrays = records.TrackArrays(
        frames_224=np.zeros((1, 224, 224, 3), np.uint8), timestamps=np.zeros(1),
        detected=np.ones(1, bool), fps=constants.FPS, audio=np.full(count, 0.1, np.float32),
        audio_codec=codec, audio_frame_size=frame_size)
    record = records.parse_track(tf.constant(records.serialize_track(
        arrays, records.TrackMetadata(video_id="v", dataset="d", label=0))))
    audio = input_pipeline.released_audio(record).numpy()
    assert len(audio) == expected and not audio[count:].any()  # no tail stored: zeros


@pytest.fixture(scope="module")
def released_layout_checkpoint(tmp_path_factory):
  """Random TSM-ResNet50 x1 weights pickled in FakeOut's release layout, read back."""
  path = tmp_path_factory.mktemp("released") / "fakeout_tsm_resnet_x1.pkl"
  path.write_bytes(legacy.dumps(reference.random_checkpoint(width_mult=1, seed=3)))
  return checkpoints.load_haiku_checkpoint(path)


@pytest.mark.slow
def test_logits_within_1e4_of_scale(original, parsed, released_layout_checkpoint):
  """The project's network on its own released-mode spectrograms and on the original's.

  Both runs share one video input (4 frames at 32x32 of the track: the comparison is about
  the audio, the video path's exactness is the frame-index test above). Slow: the full
  ResNet-50 audio tower on 5 windows, three times (about 3 minutes on 2 busy cores).
  """
  model = models.create_model(model_config.get_config("tsm_resnet_x1"))
  record = parsed["single"]
  frames = records.decode_frames(record["image/encoded"][:4]).numpy()
  video_input = tf.image.resize(frames.astype(np.float32) / 255.0, (32, 32)).numpy()
  video_input = np.repeat(video_input[None], 5, axis=0)
  ours = _record_spectrograms(record)[..., None]
  theirs = original["single/spectrogram"][..., None]
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), video_input, theirs,
                                             train=False))
  variables, report = checkpoints.convert(released_layout_checkpoint, shapes)
  assert report.ok
  apply = jax.jit(lambda v, audio: model.apply(v, video_input, audio, train=False)["logits"])
  expected, actual = np.asarray(apply(variables, theirs)), np.asarray(apply(variables, ours))
  scale = float(np.abs(expected).max())
  error = float(np.abs(actual - expected).max())
  print(f"logits: max |difference| {error:.3g}, scale {scale:.3g}")
  assert scale > 1e-3 and error <= LOGIT_RELATIVE_TOLERANCE * scale, (
      f"max |logit difference| {error:.3g} > {LOGIT_RELATIVE_TOLERANCE} x scale {scale:.3g}")
  # Sensitivity: the old audio-length rule moves the logits far beyond the tolerance.
  plain = records.parse_track(tf.constant(_track_record("single", with_codec=False)))
  old = np.asarray(apply(variables, _record_spectrograms(plain)[..., None]))
  print(f"logits with the old audio-length rule: max |difference| "
        f"{np.abs(old - expected).max():.3g}")
  assert np.abs(old - expected).max() > 10 * LOGIT_RELATIVE_TOLERANCE * scale
