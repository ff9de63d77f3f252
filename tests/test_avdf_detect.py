"""avdf.detect end to end on tiny models: calibrate on records -> evaluate -> detect a folder
(tracking in a worker process), the same scores on both paths, resume, and the reports in a
real browser (headless Chromium)."""
import csv
import json
import pathlib
import re
import shutil
import subprocess

import jax
import numpy as np
import pytest

from avdf import analysis, batch, detect, detectors
from data import constants, prepare, records, tracks as tracks_lib
from data.datasets import base
from fakeout_jax import checkpoints, models, state
from tests import fakeout_tiny, video_fixtures
from tests import inconsistency_records as fixtures

FAKEOUT_CONFIG = "tests/fakeout_tiny_config.py"


def _track(video_path, video_id, identity, num_frames, seed, drift=False, index=0, name=None):
  """A face track of the inconsistency fixtures (drift: the face turns into another one)."""
  shown = None
  if drift:
    shown = [identity] * (num_frames // 2) + [identity + 1] * (num_frames - num_frames // 2)
  arrays = fixtures.track_arrays(identity, num_frames, seed=seed, face_identity=shown)
  return tracks_lib.Track(
      video_id=video_id, video_path=str(video_path), track_index=index, name=name or video_id,
      fps=constants.FPS, timestamps=arrays.timestamps, frames_224=arrays.frames_224,
      frames_112=arrays.frames_112, landmarks_224=arrays.landmarks,
      transforms_224=np.zeros((num_frames, 2, 3), np.float32),
      transforms_112=np.zeros((num_frames, 2, 3), np.float32), detected=arrays.detected,
      audio=arrays.audio, has_audio=True, source_size=(320, 240))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """Tiny checkpoints, a labelled record set, its calibration and one detect run on a folder."""
  root = tmp_path_factory.mktemp("avdf")
  config = fakeout_tiny.config(root="")
  variables = state.fresh_variables(config, models.create_model(config.model),
                                    jax.random.PRNGKey(0))
  checkpoints.save_variables(root / "fakeout", jax.device_get(variables))
  fixtures.untrained_workdir(root / "inconsistency", fixtures.smoke_config(root))
  # the record set: 6 real and 6 drifting fake videos (the last with two faces), written as
  # data.prepare writes them; their audio codec is read from a real file
  source = video_fixtures.write_scene(root / "source.mp4", video_fixtures.NO_FACE, fps=25,
                                      audio=video_fixtures.tone(4.0))
  faces, ground_truth = [], []
  (root / "val").mkdir()
  with records.ShardWriter(root / "val" / records.shard_name("val", 0, 1)) as writer:
    for i in range(12):
      label = int(i >= 6)
      video_id = f"{'fake' if label else 'real'}/v{i:02d}"
      tracks = [_track(source, video_id, identity=i, num_frames=60 + 3 * i, seed=i,
                       drift=bool(label))]
      if i == 11:
        tracks = [_track(source, video_id, identity=i + k, num_frames=70, seed=i + k,
                         drift=True, index=k, name=f"{video_id}@part{k + 1}") for k in (0, 1)]
      record = base.VideoRecord(video_path=str(source), label=label, video_id=video_id,
                                dataset="tiny", split="val",
                                category="FakeVideo" if label else "real", has_audio=True)
      for serialized in prepare.track_records(record, tracks):
        writer.write(serialized)
      faces.append(tracks)
      ground_truth.append({"path": f"{video_id}.mp4", "kind": "drift" if label else "real"})
  with open(root / "ground_truth.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=["path", "kind"])
    writer.writeheader()
    writer.writerows(ground_truth)
  flags = ["--fakeout", str(root / "fakeout"), "--fakeout-config", FAKEOUT_CONFIG,
           "--inconsistency", str(root / "inconsistency")]
  calibrate_status = detect.main(["calibrate", "--records", str(root / "val"), *flags,
                                  "--out", str(root / "calibration.json")])
  videos = root / "videos"
  video_fixtures.write_scene(videos / "two.mp4", video_fixtures.TWO_FACES, fps=25,
                             audio=video_fixtures.tone(2.0))
  video_fixtures.write_scene(videos / "sub" / "empty.mp4", video_fixtures.NO_FACE, fps=25)
  video_fixtures.garbage_video(videos / "garbage.mp4")
  detect_status = detect.main([str(videos), *flags, "--calibration",
                               str(root / "calibration.json"), "--out", str(root / "out"),
                               "--workers", "1"])
  return {"root": root, "flags": flags, "faces": faces, "calibrate_status": calibrate_status,
          "detect_status": detect_status, "videos": videos, "out": root / "out"}


def test_calibration_file_holds_the_fit_its_data_and_reliability(run):
  assert run["calibrate_status"] == 0
  saved = json.loads((run["root"] / "calibration.json").read_text())
  assert saved["method"] == "logistic" and len(saved["rows"]) == 13  # faces, not videos
  full = saved["fits"]["fakeout+identity+audio_video"]
  assert full["count"] == 13 and full["num_fake"] == 7 and "ece" in full["reliability"]
  assert (run["root"] / "calibration_scores.csv").is_file()


def test_records_and_in_memory_tracks_give_the_same_scores(run):
  """calibrate/evaluate score record sets, detect scores tracks in memory: the fused
  probability is only right if both paths give each face the same detector scores."""
  root = run["root"]
  fakeout = detectors.FakeOutDetector(str(root / "fakeout"), FAKEOUT_CONFIG)
  inconsistency = detectors.InconsistencyDetector(str(root / "inconsistency"))
  from_records = {(r["video_id"], r["track"]): r for r in detectors.score_record_sets(
      [str(root / "val")], fakeout, inconsistency)}
  # a real and a fake one-face video, and the two-face video (FakeOut: silent audio per face)
  for tracks in (run["faces"][0], run["faces"][6], run["faces"][11]):
    result = analysis.analyse(tracks[0].video_path, tracks[0].video_id, tracks, fakeout,
                              inconsistency, None).result
    assert len(result["faces"]) == len(tracks)
    for face in result["faces"]:
      row = from_records[(tracks[0].video_id, face["face"])]
      assert face["fakeout"] == pytest.approx(row["fakeout"], abs=1e-5)
      assert face["intra"] == pytest.approx(row["intra"], abs=1e-5)
      assert face["cross"] == pytest.approx(row["cross"], abs=1e-5)
      assert any("silent" in f for f in face["flags"]) == (len(tracks) == 2)


def test_evaluate_reports_each_detector_alone_and_fused(run, tmp_path):
  out = tmp_path / "eval"
  status = detect.main(["evaluate", "--scores", str(run["root"] / "calibration_scores.csv"),
                        "--calibration", str(run["root"] / "calibration.json"),
                        "--ground-truth", str(run["root"] / "ground_truth.csv"),
                        "--out", str(out)])
  assert status == 0
  metrics = json.loads((out / "metrics.json").read_text())
  assert set(metrics["overall"]) == {"fakeout", "inconsistency", "fused"}
  assert set(metrics["per_kind"]) == {"drift"} and metrics["compared"] == 12  # videos
  assert 0 <= metrics["calibration"]["fused"]["ece"] <= 1
  for name in ("results.md", "reliability.png", "videos.csv", "scores.csv", "results.html"):
    assert (out / name).is_file(), name


def test_detect_folder_writes_results_a_manifest_with_reasons_and_an_honest_status(run):
  out = run["out"]
  assert run["detect_status"] == 1  # one video without a face, one unreadable
  manifest = batch.read_manifest(out / batch.MANIFEST)
  assert {k: v["status"] for k, v in manifest.items()} == {
      "two": "ok", "sub/empty": "no_face", "garbage": "error"}
  assert manifest["garbage"]["reason"] and manifest["garbage"]["message"]
  with open(out / "results.csv", newline="") as f:
    rows = list(csv.DictReader(f))
  faces = [r for r in rows if r["video_id"] == "two"]
  assert [r["face"] for r in faces] == ["0", "1"]
  video_p = float(faces[0]["video_probability"])
  assert video_p == pytest.approx(max(float(r["face_probability"]) for r in faces))
  assert faces[0]["video_verdict"] == ("fake" if video_p >= 0.5 else "real")
  assert all(r["calibration_fit"] == "fakeout+identity+audio_video" for r in faces)
  assert all(re.fullmatch(r"([\d.]+-[\d.]+s ?)+", r["flagged_windows"]) for r in faces)
  failed = {r["video_id"]: r for r in rows if r["video_id"] != "two"}
  assert failed["garbage"]["status"] == "error" and failed["garbage"]["reason"]
  lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
  assert len(lines) == 3
  result = json.loads((out / "reports" / "two.json").read_text())
  assert result["settings"]["calibration"]["method"] == "logistic"
  assert result["settings"]["tracking"]["people_count"] == "robust"
  stats = json.loads((out / "run_stats.json").read_text())
  assert stats["videos"] == 3 and 0 <= stats["model_idle_fraction"] <= 1


def test_a_rerun_keeps_finished_videos_and_retries_failures(run, capsys):
  out = run["out"]
  before = (out / batch.MANIFEST).read_text().splitlines()
  report_time = (out / "reports" / "two.html").stat().st_mtime
  listing = run["root"] / "videos.txt"  # the same videos, listed (same ids: resumed)
  listing.write_text("videos/two.mp4\nvideos/sub/empty.mp4\n\nvideos/garbage.mp4\n")
  status = detect.main(["--list", str(listing), *run["flags"], "--calibration",
                        str(run["root"] / "calibration.json"), "--out", str(out),
                        "--workers", "0"])
  after = (out / batch.MANIFEST).read_text().splitlines()
  assert status == 1
  assert [json.loads(line)["input"] for line in after[len(before):]] == ["garbage"]
  assert (out / "reports" / "two.html").stat().st_mtime == report_time
  assert "1 of 3 videos judged" in capsys.readouterr().out


@pytest.mark.parametrize("subcommand", [[], ["calibrate"], ["evaluate"]])
def test_every_subcommand_answers_help(subcommand, capsys):
  assert detect.main([*subcommand, "--help"]) == 0
  assert "--fakeout" in capsys.readouterr().out


def test_user_mistakes_get_one_line_errors(run, tmp_path, capsys):
  assert detect.main([str(tmp_path / "nothing.mp4"), *run["flags"],
                      "--out", str(tmp_path)]) == 2
  assert "neither a video file nor a folder" in capsys.readouterr().err
  assert detect.main([str(run["videos"]), "--fakeout", str(tmp_path / "none"),
                      "--out", str(tmp_path)]) == 2
  assert "--fakeout" in capsys.readouterr().err
  assert detect.main(["calibrate", "--records", str(tmp_path / "none"), *run["flags"],
                      "--out", str(tmp_path / "c.json")]) == 2
  assert "no TFRecord shards" in capsys.readouterr().err
  assert detect.main([str(run["videos"]), *run["flags"], "--calibration",
                      str(tmp_path / "none.json"), "--out", str(tmp_path)]) == 2
  assert "does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------------------ the browser

_PROBE = """<script>
window.addEventListener('error', e => console.log('PAGE-ERROR ' + e.message));
for (const level of ['error', 'warn']) {
  const original = console[level];
  console[level] = (...args) => { console.log('PAGE-ERROR console.' + level + ' ' +
                                              args.join(' ')); original(...args); };
}
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const timelines = document.querySelectorAll('[id^=timeline-face] img');
  const thumbs = document.querySelectorAll('[id^=thumbs-face] img');
  const verdict = document.getElementById('verdict');
  const table = document.getElementById('results');
  if (table) { sortBy(1, true); }
  console.log('PAGE-PROBE ' + JSON.stringify({
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).length,
    verdict: verdict ? verdict.innerText : null,
    timelines: Array.from(timelines).filter(i => i.naturalWidth > 0).length,
    thumbs: Array.from(thumbs).filter(i => i.naturalWidth > 0).length,
    rows: table ? Array.from(table.tBodies[0].rows).map(r => r.cells[0].dataset.value) : null,
    text: document.body.innerText.length}));
});
</script>"""


def _chromium():
  for name in ("chromium", "chromium-browser", "google-chrome"):
    if shutil.which(name):
      return shutil.which(name)
  pytest.skip("no Chromium: install Debian's `chromium` package (bash .ci/run does) to render "
              "the reports in a real browser")


def render(page: pathlib.Path, tmp_path: pathlib.Path) -> tuple[dict, list, np.ndarray]:
  """(the probe's findings, page errors, screenshot RGB) of `page` in headless Chromium; the
  probe script is inserted first in a copy of the page beside it (same relative links)."""
  from PIL import Image
  probed = page.with_name(page.stem + ".probe.html")
  probed.write_text(page.read_text().replace("<head>", "<head>" + _PROBE, 1))
  shot = tmp_path / f"{page.stem}.png"
  result = subprocess.run(
      [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
       "--disable-background-networking", "--disable-component-update", "--disable-sync",
       "--no-first-run", f"--user-data-dir={tmp_path / ('profile-' + page.stem)}",
       "--enable-logging=stderr", "--v=0", "--window-size=1200,1600",
       f"--screenshot={shot}", probed.as_uri()],
      capture_output=True, text=True, timeout=180)
  probed.unlink()
  console = re.findall(r'CONSOLE[^\]]*\] "(.*)", source', result.stderr)
  probes = [json.loads(m[len("PAGE-PROBE "):]) for m in console if m.startswith("PAGE-PROBE ")]
  errors = [m for m in console if m.startswith("PAGE-ERROR") or m.startswith("Uncaught")]
  assert probes, f"the page never finished loading: {result.stderr[-1500:]}"
  return probes[0], errors, np.asarray(Image.open(shot).convert("RGB"))


def test_the_probe_catches_script_errors(tmp_path):
  page = tmp_path / "broken.html"
  page.write_text("<!doctype html><html><head></head><body><p>x</p><script>"
                  "console.error('bad'); missingFunction();</script></body></html>")
  _, errors, _ = render(page, tmp_path)
  assert any("console.error bad" in e for e in errors)
  assert any("missingFunction" in e for e in errors)


def test_reports_and_index_render_in_a_browser(run, tmp_path):
  out = run["out"]
  report, errors, shot = render(out / "reports" / "two.html", tmp_path)
  assert errors == []
  assert report["broken"] == 0 and report["verdict"].startswith("Verdict:")
  assert "fake probability" in report["verdict"]
  assert report["timelines"] == 2 and report["thumbs"] >= 2
  assert shot.std() > 20 and (shot < 250).mean() > 0.05  # not a blank page
  index, errors, shot = render(out / "index.html", tmp_path)
  assert errors == [] and index["broken"] == 0
  # the probe clicked "fake probability" once: highest first; the failed videos (none) last
  assert index["rows"][0] == "two" and set(index["rows"]) == {"two", "sub/empty", "garbage"}
  assert shot.std() > 10
