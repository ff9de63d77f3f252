"""The real datasets' on-disk layouts and metadata, written for the synthetic videos.

FakeAVCeleb v1.2 (root ``FakeAVCeleb_v1.2/``). What is known of the release's ``meta_data.csv``
(read from public code that parses it and from audits of the file; DASH-Lab's repository does
not ship it):

* header ``source,target1,target2,method,category,type,race,gender,path,`` -- NINE names and a
  trailing comma, so the file has ten columns and pandas calls the last one ``Unnamed: 9``;
* ``path`` holds the FILE NAME (``00109.mp4``) and the unnamed tenth column the folder, prefixed
  ``FakeAVCeleb/`` although the extracted root is ``FakeAVCeleb_v1.2/``:
  ``id00076,-,-,real,A,RealVideo-RealAudio,African,men,00109.mp4,FakeAVCeleb/RealVideo-
  RealAudio/African/men/id00076``;
* ``-`` marks an empty target; ``method`` is one of real, rtvc, faceswap, fsgan, wav2lip,
  faceswap-wav2lip, fsgan-wav2lip; ``category`` A/B/C/D pairs with ``type``
  RealVideo-RealAudio / RealVideo-FakeAudio / FakeVideo-RealAudio / FakeVideo-FakeAudio;
  ``race`` is one of African, Asian (East), Asian (South), Caucasian (American),
  Caucasian (European) (spaces and parentheses in folder names); ``gender`` men / women;
* rows are grouped by category (A first), then race, gender and source id;
* file names seen in the release: ``00109.mp4`` (real), ``00109_fake.mp4`` (rtvc),
  ``00109_1.mp4`` and ``00109_id04727_AAnyugIAXao.mp4`` (face swaps: an index, or the donor id
  and the donor's YouTube id), ``00109_id00166_wavtolip.mp4`` and
  ``00109_10_id00476_wavtolip.mp4`` (lip-sync, optionally after a swap),
  ``00118_id00076_Isiq7cA-DNE_faceswap_id01779_wavtolip.mp4``; the same file name occurs in
  several folders. Which swap method uses which pattern, and what target1/target2 hold for
  each method, could not be confirmed offline; the choices below follow the observed patterns
  (see `_FAKEAVCELEB_NAMES`) and every row fills target1 with an identity id.

FaceForensics++ (root ``FaceForensics++/``): ``original_sequences/youtube/c23/videos/000.mp4``
(originals renamed to three-digit integers), ``manipulated_sequences/<Method>/c23/videos/
<target>_<source>.mp4`` (``000_003``: frames of 000, face or expressions of 003) and, from the
project's GitHub ``dataset/splits/``, ``splits/{train,val,test}.json``: lists of [id, id] pairs
written as ``json.dumps(pairs, indent=2)`` without a final newline; both orders of a pair are
fakes. The release's c23 videos have no audio; these do, following FakeOut's enrichment rule
(swaps keep the target's audio, reenactments carry the source's).

Both roots get ``synthetic_ground_truth.csv`` and ``synthetic_identities.csv`` beside the
release files; real adapters never read them.
"""
from __future__ import annotations

import collections
import csv
import io
import json
import pathlib
from fractions import Fraction

import numpy as np

from data.synth import fakes as fakes_lib
from data.synth import identities as identities_lib
from data.synth import plan as plan_lib

GROUND_TRUTH_FILE = "synthetic_ground_truth.csv"
IDENTITIES_FILE = "synthetic_identities.csv"
FAILURES_FILE = "synthetic_failures.csv"

FAKEAVCELEB_ROOT = "FakeAVCeleb_v1.2"
FAKEAVCELEB_HEADER = "source,target1,target2,method,category,type,race,gender,path,"
FAKEAVCELEB_FOLDER_PREFIX = "FakeAVCeleb"
# kind -> (category, type, method). Rotation order interleaves categories so that a few fakes
# per real video still cover B, C and D.
FAKEAVCELEB_KINDS = {
    "rvfa": ("B", "RealVideo-FakeAudio", "rtvc"),
    "swap_sharp": ("C", "FakeVideo-RealAudio", "faceswap"),
    "lipsync": ("C", "FakeVideo-RealAudio", "wav2lip"),
    "fvfa_soft": ("D", "FakeVideo-FakeAudio", "fsgan-wav2lip"),
    "drift": ("C", "FakeVideo-RealAudio", "fsgan"),
    "swap_soft": ("C", "FakeVideo-RealAudio", "fsgan"),
    "fvfa_lipsync": ("D", "FakeVideo-FakeAudio", "wav2lip"),
    "fvfa_sharp": ("D", "FakeVideo-FakeAudio", "faceswap-wav2lip"),
}
_REAL = ("A", "RealVideo-RealAudio", "real")

FACEFORENSICS_ROOT = "FaceForensics++"
FACEFORENSICS_COMPRESSION = "c23"
# FF++ method folder -> kind. FaceShifter (a later FF++ addition) holds the identity drift: FF++
# has no drift method, and FakeOut uses FaceShifter only as an extra test set.
FACEFORENSICS_METHODS = {
    "Deepfakes": "swap_soft",
    "FaceSwap": "swap_sharp",
    "Face2Face": "reenact_face",
    "NeuralTextures": "reenact_mouth",
    "FaceShifter": "drift",
}
LAYOUTS = ("fakeavceleb", "faceforensics")
MAX_FACEFORENSICS_ORIGINALS = 1000


class Entry:
  """One video of a layout: where it goes and what its metadata says."""

  def __init__(self, path: str, video: fakes_lib.Video, fields: dict[str, str]):
    self.path, self.video, self.fields = path, video, fields


def root_name(layout: str) -> str:
  return {"fakeavceleb": FAKEAVCELEB_ROOT, "faceforensics": FACEFORENSICS_ROOT}[layout]


def default_kinds(layout: str) -> int:
  return len(FAKEAVCELEB_KINDS) if layout == "fakeavceleb" else len(FACEFORENSICS_METHODS)


# --------------------------------------------------------------------------- FakeAVCeleb


def fakeavceleb_entries(reals: list[plan_lib.RealVideo],
                        recipes: list[identities_lib.IdentityRecipe], seed: int,
                        fakes_per_video: int) -> list[Entry]:
  """Each real video and `fakes_per_video` fakes of it, kinds rotating within each split.

  The rotation restarts in every split, so a split with at least len(kinds) fakes holds every
  kind: a validation split that misses a kind cannot teach a calibration (or a model choice)
  anything about it.
  """
  by_id = {recipe.identity_id: recipe for recipe in recipes}
  first_video = {}
  for real in reals:
    first_video.setdefault(real.identity, real)
  kinds = list(FAKEAVCELEB_KINDS)
  entries = []
  position = collections.Counter()  # reals of each split so far
  for real in reals:
    entries.append(_fakeavceleb_entry(fakes_lib.real_video(real), by_id, first_video, 0))
    fsgan_index = 0
    rotation = position[real.split] * fakes_per_video
    position[real.split] += 1
    for slot in range(fakes_per_video):
      kind = kinds[(rotation + slot) % len(kinds)]
      video = fakes_lib.make_fake(real, kind, by_id, seed, salt=slot)
      if FAKEAVCELEB_KINDS[kind][2] in ("fsgan", "fsgan-wav2lip"):
        fsgan_index += 1
      entries.append(_fakeavceleb_entry(video, by_id, first_video, fsgan_index))
  return entries


def _fakeavceleb_entry(video: fakes_lib.Video, recipes, first_video, fsgan_index: int) -> Entry:
  real = video.real
  recipe = recipes[real.identity]
  category, kind_type, method = _REAL if video.kind == "real" else FAKEAVCELEB_KINDS[video.kind]
  name, target1, target2 = _fakeavceleb_names(video, first_video, fsgan_index)
  folder = f"{kind_type}/{recipe.race}/{recipe.gender}/{real.identity}"
  fields = {"source": real.identity, "target1": target1, "target2": target2, "method": method,
            "category": category, "type": kind_type, "race": recipe.race,
            "gender": recipe.gender, "path": name,
            "folder": f"{FAKEAVCELEB_FOLDER_PREFIX}/{folder}"}
  return Entry(f"{folder}/{name}", video, fields)


def _fakeavceleb_names(video: fakes_lib.Video, first_video, fsgan_index: int):
  """(file name, target1, target2) following the release's naming patterns."""
  clip = video.real.clip
  face, voice, mouth = video.face_donor, video.voice_donor, video.mouth_donor
  youtube = first_video[face].youtube_id if face in first_video else ""
  kind = video.kind
  if kind == "real":
    return f"{clip}.mp4", "-", "-"
  if kind == "rvfa":
    return f"{clip}_fake.mp4", voice, "-"
  if kind == "swap_sharp":
    return f"{clip}_{face}_{youtube}.mp4", face, "-"
  if kind in ("swap_soft", "drift"):
    return f"{clip}_{fsgan_index}.mp4", face, "-"
  if kind == "lipsync":
    return f"{clip}_{mouth}_wavtolip.mp4", mouth, "-"
  if kind == "fvfa_sharp":
    return f"{clip}_{face}_{youtube}_faceswap_{voice}_wavtolip.mp4", face, voice
  if kind == "fvfa_soft":
    return f"{clip}_{fsgan_index}_{voice}_wavtolip.mp4", face, voice
  if kind == "fvfa_lipsync":
    return f"{clip}_{voice}_wavtolip.mp4", voice, "-"
  raise ValueError(f"kind {kind!r} has no FakeAVCeleb name")


def write_fakeavceleb_metadata(root: pathlib.Path, entries: list[Entry]) -> None:
  """``meta_data.csv`` exactly in the release's format (see the module docstring)."""
  race_order = {race: i for i, race in enumerate(identities_lib.RACES)}
  ordered = sorted(entries, key=lambda e: (e.fields["category"], race_order[e.fields["race"]],
                                           e.fields["gender"], e.fields["source"],
                                           e.fields["path"]))
  lines = [FAKEAVCELEB_HEADER]
  for entry in ordered:
    f = entry.fields
    lines.append(",".join([f["source"], f["target1"], f["target2"], f["method"],
                           f["category"], f["type"], f["race"], f["gender"], f["path"],
                           f["folder"]]))
  (root / "meta_data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- FaceForensics++


def faceforensics_entries(reals: list[plan_lib.RealVideo],
                          recipes: list[identities_lib.IdentityRecipe], seed: int,
                          methods: int) -> tuple[list[Entry], dict[str, list[list[str]]]]:
  """Originals, `methods` manipulation methods for every ordered pair, and the split pairs."""
  if len(reals) > MAX_FACEFORENSICS_ORIGINALS:
    raise ValueError(f"FaceForensics++ names originals 000-999; {len(reals)} real videos do not "
                     "fit (use fewer --identities or --videos-per-identity)")
  by_id = {recipe.identity_id: recipe for recipe in recipes}
  rng = plan_lib.rng_for(seed, 0xFF)
  order = rng.permutation(len(reals))
  numbers = {reals[i].index: f"{n:03d}" for n, i in enumerate(order)}
  entries = []
  for real in reals:
    video = fakes_lib.real_video(real)
    entries.append(Entry(f"original_sequences/youtube/{FACEFORENSICS_COMPRESSION}/videos/"
                         f"{numbers[real.index]}.mp4", video,
                         _ff_fields(video, numbers, "original")))
  splits = {}
  for split in identities_lib.SPLITS:
    members = [real for real in reals if real.split == split]
    pairs = _pairs(members, rng)
    splits[split] = [[numbers[a.index], numbers[b.index]] for a, b in pairs]
    for a, b in pairs:
      for target, source in ((a, b), (b, a)):
        for slot, (method, kind) in enumerate(list(FACEFORENSICS_METHODS.items())[:methods]):
          video = fakes_lib.make_fake(target, kind, by_id, seed, salt=slot, source=source)
          name = f"{numbers[target.index]}_{numbers[source.index]}"
          entries.append(Entry(f"manipulated_sequences/{method}/{FACEFORENSICS_COMPRESSION}/"
                               f"videos/{name}.mp4", video, _ff_fields(video, numbers, method)))
  return entries, splits


def _pairs(members: list[plan_lib.RealVideo], rng: np.random.Generator):
  """Disjoint pairs of videos of different people (a leftover odd video stays unpaired)."""
  pool = [members[i] for i in rng.permutation(len(members))]
  pairs = []
  while len(pool) >= 2:
    first = pool.pop(0)
    partner = next((i for i, other in enumerate(pool) if other.identity != first.identity), None)
    if partner is None:
      break
    pairs.append((first, pool.pop(partner)))
  return pairs


def _ff_fields(video: fakes_lib.Video, numbers: dict[int, str], method: str) -> dict[str, str]:
  source = video.source_video
  return {"method": method, "target": numbers[video.real.index],
          "source": numbers[source.index] if source is not None else ""}


def write_faceforensics_metadata(root: pathlib.Path, splits: dict[str, list[list[str]]]) -> None:
  (root / "splits").mkdir(parents=True, exist_ok=True)
  for split, pairs in splits.items():
    (root / "splits" / f"{split}.json").write_text(json.dumps(pairs, indent=2), encoding="utf-8")


# --------------------------------------------------------------------------- ground truth

GROUND_TRUTH_COLUMNS = (
    "path", "label", "kind", "category", "method", "split", "source_id", "target1", "target2",
    "face_identity", "face_donor", "voice_identity", "mouth_driver", "mouth_utterance",
    "audio_utterance", "mouth_lag_frames", "swap_engine", "rerender", "drift_schedule",
    "num_people", "manipulated_person", "real_path", "ff_source_path", "fps", "width", "height",
    "num_frames", "seconds", "design_sync_r")


def ground_truth_rows(entries: list[Entry], sync: dict[str, float]) -> list[dict[str, str]]:
  """One row per written video; `sync` maps paths to the design lip-sync r of the render."""
  real_paths = {e.video.real.index: e.path for e in entries if e.video.kind == "real"}
  rows = []
  for entry in entries:
    video, person, plan = entry.video, entry.video.person, entry.video.plan
    fields = entry.fields
    drift = ""
    if person.drift:
      w0, w1, t0, t1 = person.drift
      drift = f"{w0:.2f}->{w1:.2f} over {t0:.2f}-{t1:.2f}s"
    face = video.real.identity
    if video.kind in ("swap_sharp", "swap_soft", "fvfa_sharp", "fvfa_soft"):
      face = video.face_donor
    elif video.kind == "drift":
      face = f"{video.real.identity}>{video.face_donor}"
    source = video.source_video
    rows.append({
        "path": entry.path, "label": str(video.label), "kind": video.kind,
        "category": fields.get("category", ""), "method": fields["method"],
        "split": video.real.split, "source_id": video.real.identity,
        "target1": fields.get("target1", ""), "target2": fields.get("target2", ""),
        "face_identity": face, "face_donor": video.face_donor or "",
        "voice_identity": plan.speech[0].speaker,
        "mouth_driver": video.mouth_donor or video.real.identity,
        "mouth_utterance": person.mouth.utterance_id,
        "audio_utterance": plan.speech[0].utterance.utterance_id,
        "mouth_lag_frames": str(person.mouth_lag), "swap_engine": person.swap_engine or "",
        "rerender": person.rerender or "", "drift_schedule": drift,
        "num_people": str(len(plan.people)),
        "manipulated_person": "" if video.kind == "real" else "0",
        "real_path": real_paths.get(video.real.index, ""),
        "ff_source_path": (real_paths.get(source.index, "") if source is not None else ""),
        "fps": _fraction(plan.fps), "width": str(plan.width), "height": str(plan.height),
        "num_frames": str(plan.num_frames), "seconds": f"{plan.duration:.3f}",
        "design_sync_r": f"{sync[entry.path]:.3f}"})
  return sorted(rows, key=lambda row: row["path"])


def _fraction(value: Fraction) -> str:
  if value.denominator == 1:
    return str(value.numerator)
  return f"{value.numerator}/{value.denominator}"


def write_csv(path: pathlib.Path, columns, rows: list[dict[str, str]]) -> None:
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  path.write_text(buffer.getvalue(), encoding="utf-8")


IDENTITY_COLUMNS = ("identity_id", "split", "gender", "race", "recipe", "pitch_hz",
                    "formant_scale", "speaking_rate")


def identity_rows(recipes: list[identities_lib.IdentityRecipe]) -> list[dict[str, str]]:
  return [{"identity_id": r.identity_id, "split": r.split, "gender": r.gender, "race": r.race,
           "recipe": r.describe(), "pitch_hz": f"{r.voice.pitch_hz:.1f}",
           "formant_scale": f"{r.voice.formant_scale:.3f}",
           "speaking_rate": f"{r.voice.rate:.2f}"} for r in recipes]
