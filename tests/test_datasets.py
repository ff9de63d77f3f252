"""Dataset registry, shared record types, split facts, and the FaceForensics++-family adapters
(FF++, FaceShifter, DeeperForensics) on tiny trees with the real file naming."""
import json
import logging

import numpy as np
import pytest

from data import constants
from data import datasets
from data import video_writer
from data.datasets import base
from data.datasets import splits
from tests import dataset_trees as trees


# --- registry, options, records -------------------------------------------------------------

def test_registry_names_and_aliases():
  assert datasets.list_datasets() == sorted([
      "celebdf", "deeperforensics", "deepfaketimit", "dfdc", "fakeavceleb", "faceshifter",
      "ffpp", "kodf", "synthetic", "voxceleb2"])
  assert datasets.get_adapter("FaceForensics++") is datasets.FaceForensicsAdapter
  assert datasets.get_adapter("vox2") is datasets.VoxCeleb2Adapter
  with pytest.raises(ValueError, match="unknown dataset 'nope'; known: celebdf"):
    datasets.get_adapter("nope")


def test_options_are_typed_by_the_adapter_signature(tmp_path):
  adapter = datasets.build("ffpp", tmp_path, datasets.parse_options(
      ["compression=c0", "methods=Deepfakes,Face2Face", "include_real=false"]))
  assert adapter.compression == "raw"
  assert adapter.methods == ("Deepfakes", "Face2Face") and adapter.include_real is False
  fav = datasets.build("fakeavceleb", tmp_path, {"n_test_ids": "7", "test_ids": "none"})
  assert fav.n_test_ids == 7 and fav.test_ids is None
  with pytest.raises(ValueError, match="does not take option.*'colour'.*it takes: compression"):
    datasets.build("ffpp", tmp_path, {"colour": "red"})
  with pytest.raises(ValueError, match="expected true or false"):
    datasets.build("ffpp", tmp_path, {"include_real": "maybe"})
  with pytest.raises(ValueError, match="expected KEY=VALUE"):
    datasets.parse_options(["compression"])


def test_record_rejects_bad_label_and_manifest_round_trips(tmp_path):
  with pytest.raises(ValueError, match="label must be 0 .* got 2"):
    base.VideoRecord("a.mp4", 2, "a", "ffpp", "test", "real")
  records = [base.VideoRecord("/x/a.mp4", constants.FAKE, "Deepfakes/000_003", "ffpp", "test",
                              "Deepfakes", identity="003", source_id="003", target_id="000",
                              has_audio=True, audio_path="/y/a.mp4", audio_start=1.5,
                              audio_duration=2.25, extra={"compression": "c23"}),
             base.VideoRecord("/x/b.mp4", constants.REAL, "000", "ffpp", "test", "real",
                              has_audio=False)]
  path = base.write_manifest(records, tmp_path / "m.csv")
  assert base.read_manifest(path) == records


def test_a_directory_that_is_not_a_dataset_says_what_was_expected(tmp_path):
  (tmp_path / "holiday.jpg").write_text("")
  for name in datasets.list_datasets():
    with pytest.raises(base.DatasetLayoutError, match="Expected") as error:
      datasets.list_videos(name, tmp_path, datasets.get_adapter(name).splits[0])
    assert str(tmp_path) in str(error.value)
  with pytest.raises(base.DatasetLayoutError, match="not a directory"):
    datasets.list_videos("ffpp", tmp_path / "absent", "test")


def test_unknown_split_is_refused(tmp_path):
  with pytest.raises(ValueError, match="has no split 'dev'; choose one of"):
    datasets.list_videos("ffpp", tmp_path, "dev")


# --- split facts -----------------------------------------------------------------------------

def test_bundled_split_facts():
  for split, n_pairs in (("train", 360), ("val", 70), ("test", 70)):
    assert len(splits.ffpp_split_pairs(split)) == n_pairs
  assert len(splits.ffpp_split_of_id()) == 1000
  assert splits.ffpp_split_pairs("test")[0] == ("953", "974")
  assert len(splits.fakes_of_pairs(splits.ffpp_split_pairs("test"))) == 140
  assert len(splits.proper_audio_ids()) == 703
  assert len(splits.dfdc_filtered_ids()) == 3215
  # The label lists are deduplicated (each has one name listed twice).
  dfo = splits.label_list("DeeperForensics")
  assert sum(lab == constants.FAKE for _, lab in dfo) == 139
  assert sum(lab == constants.REAL for _, lab in dfo) == 137


def test_protocol_groupings():
  table2 = splits.cross_manipulation_protocol()
  assert table2["NeuralTextures"] == ("Deepfakes", "FaceSwap", "Face2Face")
  table3 = splits.cross_approach_protocol()
  assert table3["face_swap_to_reenactment"] == {"train": ("Deepfakes", "FaceSwap"),
                                                "test": ("Face2Face", "NeuralTextures")}
  assert set(splits.FAKEAVCELEB_FAKE_VIDEO_CATEGORIES) < set(
      splits.FAKEAVCELEB_PAPER_CATEGORIES)


def test_split_json_errors_name_the_file(tmp_path):
  bad = tmp_path / "split.json"
  bad.write_text('{"a": 1}')
  with pytest.raises(ValueError, match="split.json: expected a JSON list of \\[id, id\\]"):
    splits.load_split_pairs(bad)
  with pytest.raises(FileNotFoundError, match="does not exist"):
    splits.load_split_pairs(tmp_path / "nope.json")


# --- FaceForensics++ -------------------------------------------------------------------------

def test_ffpp_test_split_lists_official_pairs_only(tmp_path):
  trees.make_ffpp(tmp_path)
  listing = datasets.list_videos("ffpp", tmp_path, "test")
  # The tree has 3 of the 70 official test pairs; the rest are reported missing.
  assert listing.counts() == {"Deepfakes": 6, "Face2Face": 6, "FaceSwap": 6,
                              "NeuralTextures": 6, "real": 6}
  assert listing.skipped == 140 - 6 + 4 * (140 - 6)
  assert all(r.split == "test" for r in listing)
  assert not any("071" in r.video_id for r in listing)  # a train pair


def test_ffpp_fake_fields_follow_target_source_naming(tmp_path):
  trees.make_ffpp(tmp_path)
  records = {r.video_id: r for r in datasets.list_videos("ffpp", tmp_path, "test")}
  swap, reenact, real = (records["Deepfakes/953_974"], records["Face2Face/953_974"],
                         records["953"])
  assert (swap.target_id, swap.source_id, swap.identity) == ("953", "974", "974")
  assert swap.extra["manipulation_type"] == "face_swap"
  assert swap.extra["audio_source_id"] == "953"      # target's lips -> target's audio
  assert (reenact.identity, reenact.extra["audio_source_id"]) == ("953", "974")
  assert reenact.extra["manipulation_type"] == "reenactment"
  assert real.label == constants.REAL and real.category == "real" and real.method == ""
  assert (swap.category, swap.method) == ("Deepfakes", "Deepfakes")
  assert swap.label == constants.FAKE and swap.has_audio is False   # FF++ is silent
  assert swap.video_path.endswith("manipulated_sequences/Deepfakes/c23/videos/953_974.mp4")


def test_ffpp_missing_files_are_listed_warned_and_skipped(tmp_path, caplog):
  trees.make_ffpp(tmp_path, pairs=trees.FFPP_TEST_PAIRS)
  (tmp_path / "manipulated_sequences/Face2Face/c23/videos/012_026.mp4").unlink()
  with caplog.at_level(logging.WARNING):
    listing = datasets.list_videos("ffpp", tmp_path, "test", {"split_json": _pairs_json(
        tmp_path, trees.FFPP_TEST_PAIRS)})
  assert listing.missing == ["manipulated_sequences/Face2Face/c23/videos/012_026.mp4"]
  assert len(listing) == 6 + 4 * 6 - 1
  assert "1 videos named by the metadata are missing" in caplog.text
  assert "29 that exist, 1 skipped" in caplog.text
  assert "(1 listed in the metadata but missing on disk, skipped)" not in listing.summary()
  assert "1 listed in the metadata but missing on disk" in listing.summary()


def _pairs_json(tmp_path, pairs):
  path = tmp_path / "my_split.json"
  path.write_text(json.dumps([list(p) for p in pairs]))
  return str(path)


def test_ffpp_all_split_methods_and_local_split_file(tmp_path):
  trees.make_ffpp(tmp_path, methods=trees.FFPP_METHODS + ("FaceShifter",))
  trees.touch(tmp_path / "manipulated_sequences/DeepFakeDetection/c23/videos/"
              "01_02__exit_phone_room__YVGY8LOK.mp4")
  listing = datasets.list_videos("ffpp", tmp_path, "all", {"methods": "all"})
  assert listing.counts()["FaceShifter"] == 8 and listing.counts()["real"] == 8
  assert "DeepFakeDetection" not in listing.counts()
  assert {r.split for r in listing} == {"all"}
  assert listing.skipped == 0
  # A split file next to the data wins over the bundled official split.
  trees.touch(tmp_path / "splits/train.json", json.dumps([["953", "974"]]))
  train = datasets.list_videos("ffpp", tmp_path, "train", {"methods": "Deepfakes"})
  expected = ["953", "974", "Deepfakes/953_974", "Deepfakes/974_953"]
  assert sorted(r.video_id for r in train) == expected


def test_ffpp_other_compression_and_wrong_roots(tmp_path):
  trees.make_ffpp(tmp_path / "ff", pairs=trees.FFPP_TEST_PAIRS, compression="c40")
  listing = datasets.list_videos("ffpp", tmp_path / "ff", "test", {"compression": "c40"})
  assert len(listing) == 30 and all("/c40/" in r.video_path for r in listing)
  with pytest.raises(base.DatasetLayoutError, match="not a folder inside it"):
    datasets.list_videos("ffpp", tmp_path / "ff/original_sequences", "test")
  with pytest.raises(ValueError, match="compression must be one of"):
    datasets.build("ffpp", tmp_path, {"compression": "c99"})


# --- FaceShifter -----------------------------------------------------------------------------

def test_faceshifter_fakeout_protocol_uses_the_authors_list(tmp_path):
  trees.make_ffpp(tmp_path, pairs=(("919", "015"), ("255", "044")), methods=("FaceShifter",))
  listing = datasets.list_videos("faceshifter", tmp_path, "test")
  ids = {r.video_id: r for r in listing}
  # The reals and the 919/015 fakes (both orders) are in FakeOut's list; 255_044 and 044_255
  # are not test fakes.
  assert set(ids) == {"255", "044", "919", "015", "FaceShifter/919_015", "FaceShifter/015_919"}
  assert ids["FaceShifter/919_015"].extra["audio_source_id"] == "919"
  assert listing.skipped == 276 - 6
  with pytest.raises(ValueError, match="only the test split"):
    datasets.list_videos("faceshifter", tmp_path, "train")
  ffpp_protocol = datasets.list_videos("faceshifter", tmp_path, "all", {"protocol": "ffpp"})
  assert ffpp_protocol.counts() == {"FaceShifter": 4, "real": 4}


# --- DeeperForensics -------------------------------------------------------------------------

def test_deeperforensics_fakeout_protocol_with_ffpp_reals(tmp_path):
  dfo, ffpp = tmp_path / "DeeperForensics-1.0", tmp_path / "ffpp"
  trees.make_deeperforensics(dfo, ["480_W133", "462_W026", "071_M101"],
                             distortions={"480_W133": "CS:3 BW:2"})
  trees.make_ffpp(ffpp, pairs=(("255", "044"),), methods=())
  listing = datasets.list_videos("deeperforensics", dfo, "test", {"ffpp_root": str(ffpp)})
  ids = {r.video_id: r for r in listing}
  assert set(ids) == {"480_W133", "462_W026", "255", "044"}   # 071 is not a test target
  fake = ids["480_W133"]
  assert (fake.target_id, fake.source_id, fake.identity) == ("480", "W133", "W133")
  assert fake.extra["audio_source_id"] == "480" and fake.category == "DeeperForensics"
  assert fake.extra["distortions"] == "CS:3 BW:2"
  assert ids["255"].label == constants.REAL and ids["255"].dataset == "deeperforensics"
  assert listing.skipped == 139 + 137 - 4


def test_deeperforensics_official_and_ffpp_protocols(tmp_path, caplog):
  dfo = tmp_path / "DeeperForensics-1.0"
  trees.make_deeperforensics(dfo, ["953_M101", "071_W013"],
                             split_lists={"train": ["071_W013"], "test": ["953_M101"]})
  with caplog.at_level(logging.WARNING):
    official = datasets.list_videos("deeperforensics", dfo, "train", {"protocol": "official"})
  assert [r.video_id for r in official] == ["071_W013"]
  assert "no ffpp_root given" in caplog.text
  by_ffpp = datasets.list_videos("deeperforensics", dfo, "test", {"protocol": "ffpp"})
  assert [r.video_id for r in by_ffpp] == ["953_M101"]
  with pytest.raises(base.DatasetLayoutError, match="variants found: end_to_end"):
    datasets.list_videos("deeperforensics", dfo, "test", {"variant": "end_to_end_level_3"})


def test_ffpp_audio_probe_reads_the_streams(tmp_path):
  trees.make_ffpp(tmp_path, pairs=(("000", "001"),), methods=())
  frames = [np.zeros((32, 32, 3), np.uint8)] * 3
  video_writer.write_video(tmp_path / "original_sequences/youtube/c23/videos/000.mp4", frames,
                           fps=25, audio=np.zeros(4410, np.float32))
  video_writer.write_video(tmp_path / "original_sequences/youtube/c23/videos/001.mp4", frames,
                           fps=25)
  probed = {r.video_id: r.has_audio for r in datasets.list_videos(
      "ffpp", tmp_path, "all", {"audio": "probe"})}
  assert probed == {"000": True, "001": False}
  assert base.has_audio_stream(tmp_path / "original_sequences/youtube/c23/videos/000.mp4")
