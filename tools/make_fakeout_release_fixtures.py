"""Fixtures of the RELEASED FakeOut evaluation inputs (tests/test_fakeout_released_inference.py).

Two stages, in two environments:

1. ``tracks`` (the project's .venv): writes two face-track mp4s the way ``data.facetrack``
   writes its outputs (``data.video_writer.VideoWriter``: 224x224 H.264 at 29 fps, mono AAC at
   44.1 kHz), with speech from ``data.synth.voice``: ``single.mp4`` (one face, 3.0 s) and
   ``duo@part1.mp4`` (a multi-face video's first track, 2.4 s).

     .venv/bin/python tools/make_fakeout_release_fixtures.py tracks \\
         --out tests/fixtures/fakeout_release

2. ``original`` (a throwaway venv OUTSIDE .venv, tools/requirements-fakeout-release.txt, and
   the system ``ffmpeg``): runs the ORIGINAL FakeOut code, fetched from github.com/gilikn/FakeOut
   and never copied into this repository, on those tracks: its ``data_preparation`` (wav files
   with ``ffmpeg -ac 2 -f wav``, test lists), its tfds builder ``utils.deepfake_dataset.Deepfake``
   (frames through ``ffmpeg -qscale:v 2 -r 29``, audio through pydub) and its evaluation input
   path ``data.data_utils.generate_dataset`` + ``define_usable_audio`` exactly as
   ``inference.py`` calls them. Writes ``original.npz``: per track the frame indices and audio
   offsets its sampler takes (``sample_linspace_sequence`` run on index sequences), the wav and
   video lengths, the wav's first channel and the spectrograms ``forward_fn`` receives; with
   ``--frames-out``, the builder's decoded frames (for ``measure-frames``; not committed).

     python3.11 -m venv /tmp/venvs/fakeout_orig
     /tmp/venvs/fakeout_orig/bin/pip install -r tools/requirements-fakeout-release.txt
     apt-get install -y ffmpeg
     /tmp/venvs/fakeout_orig/bin/python tools/make_fakeout_release_fixtures.py original \\
         --fakeout-src /path/to/FakeOut --tracks tests/fixtures/fakeout_release \\
         --out tests/fixtures/fakeout_release [--frames-out /tmp/fakeout_release_frames.npz]

3. ``measure-frames`` (the project's .venv): the frame-encoding difference. The released builder
   re-encodes frames with ``ffmpeg -qscale:v 2`` JPEG, the project's records hold OpenCV JPEG
   q95 of PyAV's frames; compares the pixels and, on the real-scale TSM-ResNet50 x2 with random
   weights in FakeOut's layout (converted), vid_repr and logits of the same clips (the
   original's spectrograms for both).

     .venv/bin/python tools/make_fakeout_release_fixtures.py measure-frames \
         --tracks tests/fixtures/fakeout_release --frames /tmp/fakeout_release_frames.npz

``--fakeout-src`` is a checkout of gilikn/FakeOut (commit 11d0510). Its ``dummy_audio.wav`` is
the silent waveform the builder substitutes for missing audio; where the checkout lacks the file
(stored as an empty or absent blob), a one-second all-zero stereo wav stands in for it (the
released file is documented as all-zero, and zeros give the all-zero spectrogram at any length).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import types
import wave

import numpy as np

SAMPLE_RATE = 44100
FPS = 29
# name -> (frames, label, seed); the label is what the original's labels.csv says.
TRACKS = {"single": (87, 1, 1), "duo@part1": (70, 0, 2)}
NUM_WINDOWS = 5
AUDIO_WINDOW = int((44100.0 / 29.0) * 32)   # the released window (data_utils: WAV_BITRATE/FPS*32)


# ------------------------------------------------------------------ stage 1: the track files


def _face_frames(num_frames: int, seed: int) -> np.ndarray:
  """A smooth synthetic 'face' (skin-toned ellipse, eyes, a mouth that opens) moving slowly:
  JPEG re-encoding behaves on it as on a real aligned face crop, and the mp4 stays small."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:224, 0:224].astype(np.float32)
  skin = np.array([200, 160, 130], np.float32) * rng.uniform(0.85, 1.1)
  frames = np.empty((num_frames, 224, 224, 3), np.uint8)
  for i in range(num_frames):
    cx, cy = 112 + 6 * np.sin(i / 9.0), 115 + 4 * np.cos(i / 13.0)
    image = np.empty((224, 224, 3), np.float32)
    image[:] = (np.array([60, 70, 90], np.float32) + 0.25 * y[..., None])  # background ramp
    face = ((x - cx) / 70) ** 2 + ((y - cy) / 92) ** 2 < 1
    shade = 1.0 - 0.25 * ((x - cx) / 70) ** 2
    image[face] = (skin * shade[..., None])[face]
    for ex in (-28, 28):
      eye = ((x - cx - ex) / 11) ** 2 + ((y - cy + 22) / 6) ** 2 < 1
      image[eye] = (40, 30, 30)
    opening = 3 + 9 * (0.5 + 0.5 * np.sin(i / 2.3))
    mouth = ((x - cx) / 24) ** 2 + ((y - cy - 40) / opening) ** 2 < 1
    image[mouth] = (120, 40, 50)
    frames[i] = np.clip(image, 0, 255).astype(np.uint8)
  return frames


def write_tracks(out: pathlib.Path) -> None:
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  from data import constants
  from data import video_writer
  from data.facetrack import pipeline
  from data.synth import voice as voice_lib
  out.mkdir(parents=True, exist_ok=True)
  for name, (num_frames, _, seed) in TRACKS.items():
    rng = np.random.default_rng(seed)
    speaker = voice_lib.Voice.sample(rng, "men" if seed % 2 else "women")
    samples = pipeline.audio_samples(num_frames)
    duration = samples / SAMPLE_RATE
    # Speech up to the last sample: the AAC frame holding it decodes a tail of real signal,
    # which the released wav keeps (and records v2 carry).
    utterance = voice_lib.sample_utterance(rng, name, duration, speaker.rate,
                                           windows=[(0.05, duration)])
    audio = voice_lib.synthesize(utterance, speaker, SAMPLE_RATE, seed)[:samples]
    # The same writer and settings as data.facetrack.output.TrackFileWriter.
    with video_writer.VideoWriter(out / f"{name}.mp4", constants.FPS,
                                  (constants.FACE_SIZE, constants.FACE_SIZE),
                                  sample_rate=constants.SAMPLE_RATE) as writer:
      for frame in _face_frames(num_frames, seed):
        writer.write_frame(frame)
      writer.write_audio(audio)
    print(f"{out / name}.mp4: {num_frames} frames, {samples} audio samples")


# ------------------------------------------------------------- stage 2: the original's inputs


def _zero_wav(path: pathlib.Path) -> None:
  with wave.open(str(path), "wb") as w:
    w.setnchannels(2)
    w.setsampwidth(2)
    w.setframerate(SAMPLE_RATE)
    w.writeframes(b"\0" * 4 * SAMPLE_RATE)


def _ffmpeg_version() -> str:
  return subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True,
                        check=True).stdout.splitlines()[0]


def run_original(fakeout_src: pathlib.Path, tracks: pathlib.Path, out: pathlib.Path,
                 frames_out: pathlib.Path | None) -> None:
  # tfds 4.3's generated protos predate protobuf 4's C++ runtime.
  os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
  work = pathlib.Path(tempfile.mkdtemp(prefix="fakeout_release_"))
  root = work / "FakeOut"
  shutil.copytree(fakeout_src, root, ignore=shutil.ignore_patterns(".git"))
  dummy = root / "fakeout/data/dummy_audio.wav"
  dummy_stand_in = not dummy.is_file() or dummy.stat().st_size == 0
  if dummy_stand_in:
    _zero_wav(dummy)
  videos = work / "videos"
  videos.mkdir()
  for name in TRACKS:
    shutil.copy(tracks / f"{name}.mp4", videos / f"{name}.mp4")
  # The Celeb-DF entry of the original's DATASET_CONFIG: no filtered test list, no audio json.
  dataset_dir = root / "fakeout/data/Celeb_DF_v2"
  with open(dataset_dir / "labels.csv", "w") as f:
    f.write("filename,label\n")
    for name, (_, label, _) in TRACKS.items():
      f.write(f"{name.split('@')[0]}.mp4,{label}\n")

  # Its data preparation, as its README runs it (from the repository root).
  subprocess.run([sys.executable, "fakeout/data/data_preparation.py", "--dataset_name",
                  "celeb_df", "--split", "test", "--videos_path", str(videos)],
                 cwd=root, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

  os.chdir(root)
  sys.path.insert(0, str(root / "fakeout"))
  import tensorflow as tf
  import tensorflow_datasets as tfds
  from data import data_config
  from data import data_utils
  from utils import deepfake_dataset

  flags = types.SimpleNamespace(use_audio=True, num_test_windows=NUM_WINDOWS, num_frames=32,
                                mel_filters=80, eval_batch_size=1)
  configuration = data_config.DATASET_CONFIG["celeb_df"]
  dset_config = deepfake_dataset.DeepfakeConfig(name="celeb_df")
  model_config = {"visual_backbone": "resnet50tsm"}
  # inference.py's test path: the builder (download_and_prepare), process_samples, batches of 1.
  test_ds = data_utils.generate_dataset(dset_config, configuration, model_config,
                                        dataset_name="celeb_df", FLAGS=flags, train=False)
  dataset_path = os.path.join(configuration[data_config.DATASET_FOLDER],
                              data_config.DATASET_MIDFIX,
                              f"ZIP.{configuration[data_config.DIRECTORY_NAME]}_test.zip")
  files_in_dir = os.listdir(dataset_path)
  # The raw examples, before sampling: their lengths drive the linspace offsets.
  builder = deepfake_dataset.Deepfake(dataset_name="celeb_df", train=False,
                                      data_dir=configuration[data_config.DATASET_FOLDER],
                                      config=dset_config, labels_path=None, audio_modality=True)
  raw = {ex["path"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split="test"))}

  result = {"ffmpeg": _ffmpeg_version(), "tfds": tfds.__version__, "tensorflow": tf.__version__,
            "dummy_audio_stand_in": dummy_stand_in, "tracks": list(TRACKS)}
  arrays, frames = {}, {}
  for chunk in test_ds:
    chunk = tfds.as_numpy(chunk)
    path = chunk["path"][0].decode()
    name = path[:-len(".mp4")]
    audio = data_utils.define_usable_audio(chunk, files_in_dir, flags, None, train=False)
    example = raw[path]
    num_video, num_audio = len(example["video"]), len(example["audio"])
    frame_indices = data_utils.sample_linspace_sequence(
        tf.range(num_video), NUM_WINDOWS, 32).numpy().reshape(NUM_WINDOWS, 32)
    audio_indices = data_utils.sample_linspace_sequence(
        tf.range(num_audio), NUM_WINDOWS, AUDIO_WINDOW, stride=1).numpy().reshape(
            NUM_WINDOWS, AUDIO_WINDOW)
    # The sampled clips must be the raw frames at those indices (the index reading is right).
    np.testing.assert_array_equal(chunk["video"],
                                  example["video"][frame_indices].astype(np.float32) / 255.0)
    key = name.replace("@", "_at_")
    arrays[f"{key}/frame_indices"] = frame_indices.astype(np.int32)
    arrays[f"{key}/audio_offsets"] = audio_indices[:, 0].astype(np.int64)
    arrays[f"{key}/wav_length"] = np.int64(num_audio)
    arrays[f"{key}/video_length"] = np.int64(num_video)
    arrays[f"{key}/spectrogram"] = np.asarray(audio, np.float32)[..., 0]
    # The wav's first channel, as the builder read it (pydub: int16 values as float32).
    arrays[f"{key}/wav_channel0"] = example["audio"][:, 0].astype(np.int16)
    arrays[f"{key}/label"] = np.int64(chunk["label"][0])
    frames[f"{key}/frames"] = example["video"]
    print(f"{name}: {num_video} frames, wav {num_audio} samples, audio offsets "
          f"{audio_indices[:, 0].tolist()}, spectrogram max {float(np.max(audio)):.3g}")
  out.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(out / "original.npz", **arrays)
  (out / "original.json").write_text(json.dumps(result, indent=1) + "\n")
  if frames_out is not None:
    np.savez_compressed(frames_out, **frames)
  shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------- stage 3: the frame-encoding difference


def measure_frames(tracks: pathlib.Path, frames_path: pathlib.Path, clips: list[int]) -> dict:
  root = pathlib.Path(__file__).resolve().parents[1]
  sys.path.insert(0, str(root))
  import jax
  import tensorflow as tf
  from data import records
  from data import video
  from fakeout_jax import checkpoints
  from fakeout_jax import models
  from fakeout_jax.configs import model as model_config
  from tests import mmv_haiku_reference as reference

  original = np.load(tracks / "original.npz")
  released_frames = np.load(frames_path)
  model = models.create_model(model_config.get_config("tsm_resnet_x2"))
  example_video = np.zeros((1, 32, 224, 224, 3), np.float32)
  example_audio = np.zeros((1, 183, 80, 1), np.float32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), example_video,
                                             example_audio, train=False))
  variables, report = checkpoints.convert(reference.random_checkpoint(width_mult=2, seed=5),
                                          shapes)
  assert report.ok
  apply = jax.jit(lambda v, x, a: model.apply(v, x, a, train=False))
  result = {}
  for name in TRACKS:
    key = name.replace("@", "_at_")
    theirs = released_frames[f"{key}/frames"]
    ours = np.stack([tf.io.decode_jpeg(records.encode_jpeg(f.image)).numpy()
                     for f in video.iter_frames(tracks / f"{name}.mp4")])
    difference = np.abs(ours.astype(np.int32) - theirs.astype(np.int32))
    mse = float(np.mean(difference.astype(np.float64) ** 2))
    entry = {"pixel_max_abs": int(difference.max()), "pixel_mean_abs": float(difference.mean()),
             "psnr_db": float(10 * np.log10(255.0 ** 2 / mse)), "clips": {}}
    indices = original[f"{key}/frame_indices"]
    spectrograms = original[f"{key}/spectrogram"][..., None]
    for clip in clips:
      outputs = [apply(variables, (frames[indices[clip]][None] / 255.0).astype(np.float32),
                       spectrograms[clip:clip + 1]) for frames in (theirs, ours)]
      clip_entry = {}
      for output in ("vid_repr", "logits"):
        expected, actual = (np.asarray(o[output]) for o in outputs)
        scale = float(np.abs(expected).max())
        clip_entry[output] = {"max_abs_difference": float(np.abs(actual - expected).max()),
                              "scale": scale,
                              "relative": float(np.abs(actual - expected).max() / scale)}
      entry["clips"][str(clip)] = clip_entry
      print(name, clip, json.dumps(clip_entry), flush=True)
    result[name] = entry
  print(json.dumps(result, indent=1))
  return result


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="stage", required=True)
  tracks = sub.add_parser("tracks", help="write the two face-track mp4s (project .venv)")
  tracks.add_argument("--out", required=True, type=pathlib.Path)
  original = sub.add_parser("original", help="run the original FakeOut input path (throwaway "
                                             "venv)")
  original.add_argument("--fakeout-src", required=True, type=pathlib.Path)
  original.add_argument("--tracks", required=True, type=pathlib.Path)
  original.add_argument("--out", required=True, type=pathlib.Path)
  original.add_argument("--frames-out", type=pathlib.Path, default=None)
  measure = sub.add_parser("measure-frames", help="frame-encoding effect on the x2 model "
                                                  "(project .venv)")
  measure.add_argument("--tracks", required=True, type=pathlib.Path)
  measure.add_argument("--frames", required=True, type=pathlib.Path)
  measure.add_argument("--clips", default="0,2,4", help="clip indices to run through the model")
  measure.add_argument("--out", type=pathlib.Path, default=None, help="write the JSON here")
  args = parser.parse_args(argv)
  if args.stage == "tracks":
    write_tracks(args.out)
  elif args.stage == "measure-frames":
    result = measure_frames(args.tracks, args.frames, [int(c) for c in args.clips.split(",")])
    if args.out:
      args.out.write_text(json.dumps(result, indent=1) + "\n")
  else:
    run_original(args.fakeout_src.resolve(), args.tracks.resolve(), args.out.resolve(),
                 args.frames_out.resolve() if args.frames_out else None)


if __name__ == "__main__":
  main()
