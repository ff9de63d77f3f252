"""Adapters of the audio-visual and cross-dataset test sets on tiny trees with the real naming:
FakeAVCeleb, the synthetic alias, DFDC, DeepfakeTIMIT, VoxCeleb2, KoDF, Celeb-DF, and the
``python -m data.datasets`` check command."""
import logging

import pytest

from data import constants
from data import datasets
from data.datasets import __main__ as datasets_cli
from data.datasets import base
from data.datasets import kodf
from data.datasets import voxceleb2
from tests import dataset_trees as trees


# --- FakeAVCeleb -----------------------------------------------------------------------------

def test_fakeavceleb_categories_labels_and_duplicate_rows(tmp_path, caplog):
  trees.make_fakeavceleb(tmp_path)
  with caplog.at_level(logging.WARNING):
    listing = datasets.list_videos("fakeavceleb", tmp_path, "all")
  assert listing.counts() == {"FVFA-FS": 1, "FVFA-GAN": 1, "FVFA-WL": 1, "FVRA-FS": 1,
                              "FVRA-WL": 1, "RVFA": 2, "RVRA": 3}
  assert "1 duplicate video ids kept once" in caplog.text
  records = {r.video_id: r for r in listing}
  wl = records["FakeVideo-FakeAudio/African/men/id00166/00010_3_id00076_wavtolip"]
  assert wl.category == "FVFA-WL"   # the first of the two rows wins
  real = records["RealVideo-RealAudio/African/men/id00076/00109"]
  assert real.label == constants.REAL and real.has_audio
  rvfa = records["RealVideo-FakeAudio/African/men/id00076/00109_fake"]
  assert (rvfa.label, rvfa.identity, rvfa.target_id) == (constants.FAKE, "id00076", "id00476")
  assert rvfa.extra["video_fake"] == "0" and rvfa.extra["audio_fake"] == "1"
  assert (rvfa.method, real.method) == ("rtvc", "")
  assert listing.skipped == 0


def test_fakeavceleb_identity_splits(tmp_path):
  trees.make_fakeavceleb(tmp_path)
  ids_file = trees.touch(tmp_path / "test_ids.txt", "# FakeOut-style list\nid00476\n")
  test = datasets.list_videos("fakeavceleb", tmp_path, "test", {"test_ids": str(ids_file)})
  assert {r.source_id for r in test} == {"id00476"} and len(test) == 2
  train = datasets.list_videos("fakeavceleb", tmp_path, "train", {"test_ids": str(ids_file)})
  assert not {r.source_id for r in train} & {"id00476"}
  # Rows whose target is a test identity never reach train.
  assert not any(r.target_id == "id00476" for r in train)
  options = {"n_test_ids": "1", "seed": "3"}
  seeded = [datasets.list_videos("fakeavceleb", tmp_path, "test", options) for _ in range(2)]
  assert [r.video_id for r in seeded[0]] == [r.video_id for r in seeded[1]]
  assert seeded[0].records[0].extra["identity_split"] == "seeded:3:1"
  with pytest.raises(ValueError, match="has only 3 source identities"):
    datasets.list_videos("fakeavceleb", tmp_path, "test")   # default 120 identities


def test_fakeavceleb_missing_file_category_filter_and_wrong_root(tmp_path):
  root = tmp_path / "FakeAVCeleb_v1.2"
  trees.make_fakeavceleb(root, absent=("00033.mp4",))
  listing = datasets.list_videos("fakeavceleb", root, "all", {"categories": "RVRA,RVFA"})
  assert listing.counts() == {"RVFA": 2, "RVRA": 2}
  assert listing.missing == ["RealVideo-RealAudio/African/men/id00476/00033.mp4"]
  with pytest.raises(base.DatasetLayoutError, match="did you mean .*FakeAVCeleb_v1.2"):
    datasets.list_videos("fakeavceleb", tmp_path, "all")


def test_fakeavceleb_bad_header_names_the_file(tmp_path):
  trees.touch(tmp_path / "meta_data.csv", "file,label\na.mp4,0\n")
  with pytest.raises(base.DatasetLayoutError, match="meta_data.csv: expected the FakeAVCeleb"):
    datasets.list_videos("fakeavceleb", tmp_path, "all")


# --- synthetic alias ---------------------------------------------------------------------------

def test_synthetic_reads_both_layouts_and_the_sidecar(tmp_path):
  fav = trees.make_fakeavceleb(tmp_path / "fav")
  trees.touch(fav / "synthetic_ground_truth.csv",
              "path,split,mouth_audio_corr\n"
              "RealVideo-RealAudio/African/men/id00076/00109.mp4,test,0.71\n"
              "RealVideo-RealAudio/African/men/id00166/00010.mp4,train,0.64\n")
  test = datasets.list_videos("synthetic", fav, "test")
  assert [r.video_id for r in test] == ["RealVideo-RealAudio/African/men/id00076/00109"]
  assert test.records[0].extra["gt.mouth_audio_corr"] == "0.71"
  assert test.records[0].dataset == "synthetic" and test.records[0].split == "test"
  ffpp = trees.make_ffpp(tmp_path / "ff", pairs=(("000", "001"),))
  listing = datasets.list_videos("synthetic", ffpp, "all")
  assert listing.counts() == {"Deepfakes": 2, "Face2Face": 2, "FaceSwap": 2,
                              "NeuralTextures": 2, "real": 2}
  # The same trees read by the real adapters with no special case.
  assert len(datasets.list_videos("fakeavceleb", fav, "all")) == 10
  assert len(datasets.list_videos("ffpp", ffpp, "all")) == 10


# --- DFDC --------------------------------------------------------------------------------------

def test_dfdc_test_labels_filtered_and_dog_mask(tmp_path):
  # aalscayrfi and aaoqanfmgd are in FakeOut's filtered list; zzzzzzzzzz is not.
  trees.make_dfdc(tmp_path, {"aalscayrfi": 1, "aaoqanfmgd": 0, "zzzzzzzzzz": 1, "gone": 0})
  (tmp_path / "test/gone.mp4").unlink()
  full = datasets.list_videos("dfdc", tmp_path, "test")
  assert {r.video_id: r.label for r in full} == {"aalscayrfi": 1, "aaoqanfmgd": 0,
                                                 "zzzzzzzzzz": 1}
  assert full.missing == ["test/gone.mp4"]
  filtered = datasets.list_videos("dfdc", tmp_path, "test", {"subset": "filtered"})
  assert sorted(r.video_id for r in filtered) == ["aalscayrfi", "aaoqanfmgd"]
  dog = str(trees.touch(tmp_path / "dog.txt", "zzzzzzzzzz.mp4\n"))
  listing = datasets.list_videos("dfdc", tmp_path, "test", {"dog_mask_list": dog})
  with_dog = {r.video_id: r for r in listing}
  assert with_dog["zzzzzzzzzz"].label == constants.REAL       # distractors count as real
  assert with_dog["zzzzzzzzzz"].extra["dfdc_label"] == "1"
  assert with_dog["zzzzzzzzzz"].category == "dog_mask"
  without = datasets.list_videos("dfdc", tmp_path, "test",
                                 {"dog_mask_list": dog, "dog_mask": "exclude"})
  assert "zzzzzzzzzz" not in {r.video_id for r in without}
  only = datasets.list_videos("dfdc", tmp_path, "test",
                              {"dog_mask_list": dog, "dog_mask": "only"})
  assert [r.video_id for r in only] == ["zzzzzzzzzz"]
  with pytest.raises(ValueError, match="needs dog_mask_list"):
    datasets.build("dfdc", tmp_path, {"dog_mask": "exclude"})


def test_dfdc_metadata_json_videos_folder_and_train_parts(tmp_path):
  trees.make_dfdc(tmp_path, {"abc": 1, "def": 0}, videos_subdir=True, metadata_json=True,
                  train={"aaa": ("FAKE", "bbb"), "bbb": ("REAL", "")})
  test = datasets.list_videos("dfdc", tmp_path, "test")
  assert {r.video_id: r.label for r in test} == {"abc": 1, "def": 0}
  assert all("/test/videos/" in r.video_path for r in test)
  train = {r.video_id: r for r in datasets.list_videos("dfdc", tmp_path, "train")}
  assert train["aaa"].label == constants.FAKE and train["aaa"].source_id == "bbb"
  assert train["bbb"].extra["part"] == "dfdc_train_part_0"
  trees.touch(tmp_path / "validation" / "x.mp4")
  with pytest.raises(base.DatasetLayoutError, match="neither labels.csv nor metadata.json"):
    datasets.list_videos("dfdc", tmp_path, "validation")


# --- DeepfakeTIMIT -----------------------------------------------------------------------------

def test_deepfaketimit_fakes_and_vidtimit_reals(tmp_path, caplog):
  root, vid = tmp_path / "DeepfakeTIMIT", tmp_path / "VidTIMIT"
  trees.make_deepfaketimit(root, vid, converted=("fram1",))
  listing = datasets.list_videos("deepfaketimit", root, "test", {"vidtimit_root": str(vid)})
  assert listing.counts() == {"HQ": 3, "real": 3}
  records = {r.video_id: r for r in listing}
  fake = records["HQ/fadg0/sa1-video-fram1"]
  assert (fake.target_id, fake.identity) == ("fadg0", "fram1")
  assert fake.audio_path.endswith("higher_quality/fadg0/sa1.wav") and fake.has_audio
  frames = records["real/fadg0/sa1"]
  assert frames.extra["video_kind"] == "image_sequence" and frames.extra["fps"] == "25"
  assert frames.audio_path.endswith("fadg0/audio/sa1.wav")
  assert records["real/fram1/sa1"].video_path.endswith("fram1/sa1.mp4")
  both = datasets.list_videos("deepfaketimit", root, "test", {"quality": "both"})
  assert both.counts() == {"HQ": 3, "LQ": 3}
  with caplog.at_level(logging.WARNING):
    datasets.list_videos("deepfaketimit", root, "test")
  assert "no vidtimit_root given" in caplog.text


def test_deepfaketimit_missing_real_is_reported(tmp_path):
  root, vid = tmp_path / "DeepfakeTIMIT", tmp_path / "VidTIMIT"
  trees.make_deepfaketimit(root, vid, fakes=(("fadg0", "sa1", "fram1"),))
  trees.make_deepfaketimit(root, None, fakes=(("fadg0", "sx19", "fram1"),))
  listing = datasets.list_videos("deepfaketimit", root, "test", {"vidtimit_root": str(vid)})
  assert listing.missing == ["fadg0/video/sx19"]


# --- VoxCeleb2 ---------------------------------------------------------------------------------

def test_voxceleb2_identities_and_exclusions(tmp_path):
  root = trees.make_voxceleb2(tmp_path / "vox2")
  listing = datasets.list_videos("voxceleb2", root, "dev")
  assert len(listing) == 5 and {r.label for r in listing} == {constants.REAL}
  clip = {r.video_id: r for r in listing}["id00012/21Uxsk56VDQ/00002"]
  assert (clip.identity, clip.source_id) == ("id00012", "21Uxsk56VDQ")
  excluded = trees.touch(tmp_path / "exclude.txt", "id00012\n")
  kept = datasets.list_videos("voxceleb2", root, "dev", {"exclude_ids": str(excluded)})
  assert {r.identity for r in kept} == {"id00076", "id00166"}
  fav = trees.make_fakeavceleb(tmp_path / "fav")
  assert voxceleb2.fakeavceleb_identities(fav) == {"id00076", "id00166", "id00476"}
  clean = datasets.list_videos("voxceleb2", root, "train", {"exclude_fakeavceleb": str(fav)})
  assert {r.identity for r in clean} == {"id00012"}
  capped = datasets.list_videos("voxceleb2", root, "dev", {"max_clips_per_identity": "1"})
  assert len(capped) == 3


def test_voxceleb2_bare_mp4_root(tmp_path):
  root = trees.make_voxceleb2(tmp_path, split="test", prefix=False)
  assert len(datasets.list_videos("voxceleb2", root, "test")) == 5


# --- KoDF --------------------------------------------------------------------------------------

def test_kodf_international_layout_and_adversarial_subset(tmp_path, caplog):
  root = trees.make_kodf(tmp_path / "kodf_release")
  everything = datasets.list_videos("kodf", root, "all")
  records = {r.video_id: r for r in everything}
  assert records["original_videos/10001/200715_a1_1"].label == constants.REAL
  assert records["original_videos/10001/200715_a1_1"].identity == "10001"
  swap = records["synthesized_videos/dffs/10001_10002/200715_a1_1_dffs"]
  assert (swap.label, swap.category, swap.target_id) == (constants.FAKE, "dffs", "200715_a1_1")
  assert swap.extra["gender"] == "male"
  with caplog.at_level(logging.WARNING):
    adversarial = datasets.list_videos("kodf", root, "adversarial")
  assert {r.video_id: r.label for r in adversarial} == {
      "adversarial_examples/original_videos/200715_a1_1_adv": constants.REAL,
      "adversarial_examples/synthesized_videos/200715_a1_1_dffs_adv": constants.FAKE}
  assert "1 clips whose class cannot be told" in caplog.text
  fo_only = datasets.list_videos("kodf", root, "all", {"methods": "fo"})
  assert fo_only.counts()["fo"] == 1 and "dffs" not in fo_only.counts()


def test_kodf_aihub_layout(tmp_path):
  root = trees.make_kodf_aihub(tmp_path)
  train = {r.video_id: r for r in datasets.list_videos("kodf", root, "train")}
  assert len(train) == 2
  fake = train["1.Training/[원천][변조]train_dfl1_data/200715_a1_1_dfl"]
  assert (fake.category, fake.target_id) == ("dfl", "200715_a1_1")
  assert len(datasets.list_videos("kodf", root, "validation")) == 1


def test_kodf_draws_follow_the_protocol_counts():
  records = [base.VideoRecord(f"{i}.mp4", i % 2, f"v{i}", "kodf", "adversarial", "x")
             for i in range(20)]
  draws = kodf.adversarial_draws(records, n_draws=5, n_real=3, n_fake=4, seed=1)
  assert len(draws) == 5 and all(len(d) == 7 and len(set(d)) == 7 for d in draws)
  assert draws == kodf.adversarial_draws(records, n_draws=5, n_real=3, n_fake=4, seed=1)
  with pytest.raises(ValueError, match="needs 276 real and 544 fake"):
    kodf.adversarial_draws(records)


# --- Celeb-DF ----------------------------------------------------------------------------------

def test_celebdf_official_list_bundled_list_and_train(tmp_path):
  root = trees.make_celebdf(tmp_path / "Celeb-DF-v2")
  test = datasets.list_videos("celebdf", root, "test")
  assert {r.video_id: r.label for r in test} == {
      "YouTube-real/00170": 0, "Celeb-real/id0_0000": 0, "Celeb-synthesis/id0_id16_0003": 1}
  assert test.missing == ["Celeb-synthesis/id9_id3_0001.mp4"]
  fake = {r.video_id: r for r in test}["Celeb-synthesis/id0_id16_0003"]
  assert (fake.target_id, fake.identity) == ("id0", "id16")
  train = datasets.list_videos("celebdf", root, "train")
  assert sorted(r.video_id for r in train) == ["Celeb-real/id1_0003", "Celeb-synthesis/"
                                               "id1_id0_0007", "YouTube-real/00208"]
  (root / "List_of_testing_videos.txt").unlink()
  bundled = datasets.list_videos("celebdf", root, "test")
  assert len(bundled) == 4 and bundled.skipped == 518 - 4
  trees.touch(root / "List_of_testing_videos.txt", "0 YouTube-real/00170.mp4\n")
  with pytest.raises(ValueError, match="disagrees with folder YouTube-real"):
    datasets.list_videos("celebdf", root, "test")


# --- the check command -------------------------------------------------------------------------

def test_check_command_lists_and_writes_a_manifest(tmp_path, capsys):
  root = trees.make_ffpp(tmp_path / "ff", pairs=trees.FFPP_TEST_PAIRS)
  out = tmp_path / "listing.csv"
  assert datasets_cli.main(["ffpp", "--root", str(root), "--split", "test", "--option",
                            "methods=Deepfakes", "--out", str(out)]) == 0
  printed = capsys.readouterr().out
  assert "ffpp/test: 12 videos (6 real, 6 fake)" in printed
  assert len(base.read_manifest(out)) == 12
  assert datasets_cli.main(["fakeavceleb", "--root", str(tmp_path)]) == 2
  assert "does not look like a FakeAVCeleb" in capsys.readouterr().err
  assert datasets_cli.main(["--help-datasets"]) == 0
  assert "--option vidtimit_root" in capsys.readouterr().out
