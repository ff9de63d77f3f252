"""Tiny directory trees with each dataset's real file naming, for the adapter tests.

Video files are empty placeholders unless a test needs decodable media; the adapters list
files, they do not decode them. Ids and names are taken from the real releases (FF++ test pairs,
the FakeOut label lists, FakeAVCeleb's meta_data.csv rows, ...).
"""
from __future__ import annotations

import csv
import json
import pathlib
from typing import Iterable, Sequence

# Three FF++ official test pairs and one train pair.
FFPP_TEST_PAIRS = (("953", "974"), ("012", "026"), ("078", "955"))
FFPP_TRAIN_PAIRS = (("071", "054"),)
FFPP_METHODS = ("Deepfakes", "FaceSwap", "Face2Face", "NeuralTextures")


def touch(path: pathlib.Path, text: str = "") -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text, encoding="utf-8")
  return path


def make_ffpp(root: pathlib.Path, pairs: Sequence[tuple[str, str]] = FFPP_TEST_PAIRS +
              FFPP_TRAIN_PAIRS, methods: Sequence[str] = FFPP_METHODS,
              compression: str = "c23") -> pathlib.Path:
  """original_sequences/youtube/<c>/videos/<id>.mp4 and manipulated_sequences/<M>/<c>/videos/
  <target>_<source>.mp4 for both orders of every pair."""
  for a, b in pairs:
    for video_id in (a, b):
      touch(root / "original_sequences/youtube" / compression / "videos" / f"{video_id}.mp4")
    for method in methods:
      for name in (f"{a}_{b}", f"{b}_{a}"):
        touch(root / "manipulated_sequences" / method / compression / "videos" / f"{name}.mp4")
  return root


def make_ffpp_youtube(root: pathlib.Path, sequences: dict[str, tuple[str, int, list[int]]],
                      fps: float = 25.0, videos: Iterable[str] = (),
                      conversion_dict: bool = True) -> pathlib.Path:
  """FF++'s YouTube material: downloaded_videos_info/<yt>/<yt>.json ({'fps'}),
  .../extracted_sequences/<n>.json (frame numbers), downloaded_videos/<yt>/<yt>.mp4 for the
  youtube ids in ``videos``, and conversion_dict.json ({'000': '<yt> <n>'}) at the root.

  ``sequences``: FF++ id -> (youtube id, sequence index, frame numbers).
  """
  info = root / "downloaded_videos_info"
  for youtube_id, index, frames in sequences.values():
    touch(info / youtube_id / f"{youtube_id}.json",
          json.dumps({"id": youtube_id, "fps": fps,
                      "webpage_url": f"https://www.youtube.com/watch?v={youtube_id}"}))
    touch(info / youtube_id / "extracted_sequences" / f"{index}.json", json.dumps(frames))
  for youtube_id in videos:
    touch(root / "downloaded_videos" / youtube_id / f"{youtube_id}.mp4")
  if conversion_dict:
    touch(root / "conversion_dict.json",
          json.dumps({k: f"{yt} {n}" for k, (yt, n, _) in sequences.items()}, indent=4))
  return root


def make_deeperforensics(root: pathlib.Path, names: Sequence[str],
                         variant: str = "end_to_end",
                         split_lists: dict[str, Sequence[str]] | None = None,
                         distortions: dict[str, str] | None = None) -> pathlib.Path:
  """manipulated_videos/<variant>/<target>_<actor>.mp4, lists/splits/<split>.txt, and the
  distortion meta file of the variant."""
  for name in names:
    touch(root / "manipulated_videos" / variant / f"{name}.mp4")
  touch(root / "source_videos" / "M004" / "BlendShape" / "camera_front" / "M004_x.mp4")
  for split, listed in (split_lists or {}).items():
    touch(root / "lists" / "splits" / f"{split}.txt", "".join(f"{n}.mp4\n" for n in listed))
  if distortions:
    touch(root / "lists" / "manipulated_videos_distortions_meta" /
          f"manipulated_videos_{variant}_meta.txt",
          "".join(f"{variant}/{n}.mp4 {d}\n" for n, d in distortions.items()))
  return root


def make_dfdc(root: pathlib.Path, test: dict[str, int],
              train: dict[str, tuple[str, str]] | None = None, videos_subdir: bool = False,
              metadata_json: bool = False) -> pathlib.Path:
  """test/labels.csv (filename,label) + test/<id>.mp4 (or test/videos/), or test/metadata.json;
  train/dfdc_train_part_0/metadata.json + videos (``train``: id -> (REAL|FAKE, original))."""
  folder = root / "test"
  for video_id in test:
    touch((folder / "videos" if videos_subdir else folder) / f"{video_id}.mp4")
  if metadata_json:
    touch(folder / "metadata.json",
          json.dumps({f"{k}.mp4": {"is_fake": v} for k, v in test.items()}))
  elif test:
    touch(folder / "labels.csv",
          "filename,label\n" + "".join(f"{k}.mp4,{v}\n" for k, v in test.items()))
  if train:
    part = root / "train" / "dfdc_train_part_0"
    meta = {}
    for video_id, (label, original) in train.items():
      touch(part / f"{video_id}.mp4")
      meta[f"{video_id}.mp4"] = {"label": label, "split": "train",
                                 "original": f"{original}.mp4" if original else None}
    touch(part / "metadata.json", json.dumps(meta))
  return root


# Rows of FakeAVCeleb v1.2's meta_data.csv (source, target1, target2, method, category, type,
# race, gender, file, folder), with the release's real naming.
FAKEAVCELEB_ROWS = (
    ("id00076", "-", "-", "real", "A", "RealVideo-RealAudio", "African", "men", "00109.mp4"),
    ("id00166", "-", "-", "real", "A", "RealVideo-RealAudio", "African", "men", "00010.mp4"),
    ("id00476", "-", "-", "real", "A", "RealVideo-RealAudio", "African", "men", "00033.mp4"),
    ("id00076", "id00476", "-", "rtvc", "B", "RealVideo-FakeAudio", "African", "men",
     "00109_fake.mp4"),
    ("id00076", "id00166", "-", "wav2lip", "C", "FakeVideo-RealAudio", "African", "men",
     "00109_id00166_wavtolip.mp4"),
    ("id00076", "id00166", "-", "faceswap", "C", "FakeVideo-RealAudio", "African", "men",
     "00109_id00166_faceswap.mp4"),
    ("id00076", "id00476", "10", "faceswap-wav2lip", "D", "FakeVideo-FakeAudio", "African", "men",
     "00109_10_id00476_wavtolip.mp4"),
    ("id00076", "id00476", "10", "fsgan-wav2lip", "D", "FakeVideo-FakeAudio", "African", "men",
     "00109_10_id00476_fsgan_wavtolip.mp4"),
    ("id00166", "id00076", "3", "wav2lip", "D", "FakeVideo-FakeAudio", "African", "men",
     "00010_3_id00076_wavtolip.mp4"),
    # The release lists some files twice with another method; the first row must win.
    ("id00166", "id00076", "3", "faceswap-wav2lip", "D", "FakeVideo-FakeAudio", "African",
     "men", "00010_3_id00076_wavtolip.mp4"),
    ("id00476", "id00166", "-", "rtvc", "B", "RealVideo-FakeAudio", "African", "men",
     "00033_fake.mp4"),
)


def make_fakeavceleb(root: pathlib.Path, rows: Sequence[tuple] = FAKEAVCELEB_ROWS,
                     absent: Sequence[str] = ()) -> pathlib.Path:
  """meta_data.csv (header with 9 names and a trailing comma, 10 values per row, folder with
  the leading 'FakeAVCeleb/') and the videos it names, except file names in ``absent``."""
  lines = ["source,target1,target2,method,category,type,race,gender,path,"]
  for row in rows:
    source, type_name, race, gender, filename = row[0], row[5], row[6], row[7], row[8]
    folder = f"FakeAVCeleb/{type_name}/{race}/{gender}/{source}"
    lines.append(",".join(row) + f",{folder}")
    if filename not in absent:
      touch(root / type_name / race / gender / source / filename)
  touch(root / "meta_data.csv", "\n".join(lines) + "\n")
  return root


def make_deepfaketimit(root: pathlib.Path, vidtimit_root: pathlib.Path | None = None,
                       fakes: Sequence[tuple[str, str, str]] = (
                           ("fadg0", "sa1", "fram1"), ("fadg0", "si1279", "fram1"),
                           ("fram1", "sa1", "fadg0")),
                       qualities: Sequence[str] = ("higher_quality", "lower_quality"),
                       converted: Sequence[str] = ()) -> pathlib.Path:
  """<quality>/<subject>/<sentence>-video-<face>.avi + <sentence>.wav; VidTIMIT reals as
  <subject>/video/<sentence>/001.. frames and <subject>/audio/<sentence>.wav (or a converted
  <subject>/<sentence>.mp4 for subjects in ``converted``)."""
  for quality in qualities:
    for subject, sentence, face in fakes:
      touch(root / quality / subject / f"{sentence}-video-{face}.avi")
      touch(root / quality / subject / f"{sentence}.wav")
  if vidtimit_root is not None:
    for subject, sentence, _ in fakes:
      if subject in converted:
        touch(vidtimit_root / subject / f"{sentence}.mp4")
        continue
      for frame in ("001", "002", "003"):
        touch(vidtimit_root / subject / "video" / sentence / frame)
      touch(vidtimit_root / subject / "audio" / f"{sentence}.wav")
  return root


def make_voxceleb2(root: pathlib.Path, split: str = "dev",
                   clips: dict[str, dict[str, Sequence[str]]] | None = None,
                   prefix: bool = True) -> pathlib.Path:
  """<split>/mp4/<identity>/<youtube_id>/<clip>.mp4 (``prefix=False``: mp4/... at the root)."""
  clips = clips or {"id00012": {"21Uxsk56VDQ": ("00001", "00002"), "_-Hrq4GxWdc": ("00003",)},
                    "id00076": {"3dIgE2fM2eQ": ("00001",)},
                    "id00166": {"Jf3z0UrEwCo": ("00001",)}}
  base_dir = root / split / "mp4" if prefix else root / "mp4"
  for identity, videos in clips.items():
    for youtube_id, names in videos.items():
      for name in names:
        touch(base_dir / identity / youtube_id / f"{name}.mp4")
  return root


def make_kodf(root: pathlib.Path) -> pathlib.Path:
  """International layout: original_videos/<subject>/, synthesized_videos/<method>/<pair>/,
  adversarial_examples/{original_videos,synthesized_videos}/ and one unlabelled adversarial
  clip; plus an English metadata CSV."""
  touch(root / "original_videos" / "10001" / "200715_a1_1.mp4")
  touch(root / "original_videos" / "10002" / "200716_b2_1.mp4")
  touch(root / "synthesized_videos" / "dffs" / "10001_10002" / "200715_a1_1_dffs.mp4")
  touch(root / "synthesized_videos" / "fo" / "10002_10001" / "200716_b2_1_fo.mp4")
  touch(root / "adversarial_examples" / "original_videos" / "200715_a1_1_adv.mp4")
  touch(root / "adversarial_examples" / "synthesized_videos" / "200715_a1_1_dffs_adv.mp4")
  touch(root / "adversarial_examples" / "200799_zz_adv.mp4")
  touch(root / "meta" / "synthesized_videos.csv",
        "video_id,target_video,model,gender\n"
        "200715_a1_1_dffs.mp4,200715_a1_1.mp4,dffs,male\n")
  return root


def make_kodf_aihub(root: pathlib.Path) -> pathlib.Path:
  """AI-Hub layout with Korean folder names and metadata (영상ID, 타겟영상, 변조모델)."""
  touch(root / "1.Training" / "[원천][원본]원본1" / "200715_a1_1.mp4")
  touch(root / "1.Training" / "[원천][변조]train_dfl1_data" / "200715_a1_1_dfl.mp4")
  touch(root / "2.Validation" / "[원천][원본]원본1" / "200801_c3_1.mp4")
  with open(touch(root / "1.Training" / "[라벨링]train_meta" / "변조영상_training_메타데이터.csv"),
            "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["영상ID", "타겟영상", "변조모델", "인물성별"])
    writer.writerow(["200715_a1_1_dfl.mp4", "200715_a1_1.mp4", "dfl", "남"])
  return root


def make_celebdf(root: pathlib.Path, test_list: bool = True) -> pathlib.Path:
  """Celeb-real/, YouTube-real/, Celeb-synthesis/ and List_of_testing_videos.txt (1 = real)."""
  for rel in ("Celeb-real/id0_0000.mp4", "Celeb-real/id1_0003.mp4", "YouTube-real/00170.mp4",
              "YouTube-real/00208.mp4", "Celeb-synthesis/id0_id16_0003.mp4",
              "Celeb-synthesis/id1_id0_0007.mp4"):
    touch(root / rel)
  if test_list:
    touch(root / "List_of_testing_videos.txt",
          "1 YouTube-real/00170.mp4\n1 Celeb-real/id0_0000.mp4\n"
          "0 Celeb-synthesis/id0_id16_0003.mp4\n0 Celeb-synthesis/id9_id3_0001.mp4\n")
  return root
