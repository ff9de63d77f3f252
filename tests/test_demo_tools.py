"""The demo script's helpers: file picking (no pipes that die of SIGPIPE), a failing stage named
with its explaining log line, and the scoreboard (summary.json) the README is checked against."""
import csv
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from data import protocols
from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools"))
import demo_pick  # noqa: E402
import demo_summary  # noqa: E402

GROUND_TRUTH_COLUMNS = ("path", "kind", "split", "seconds")


@pytest.fixture
def synth_tree(tmp_path):
  """A data.synth-like tree: many videos per folder (more than a pipe buffer of names) and a
  ground-truth table."""
  root = tmp_path / "FakeAVCeleb_v1.2"
  rows = []
  for i in range(400):
    kind = ("drift", "lipsync")[i % 2]
    rel = pathlib.Path("FakeVideo-RealAudio", "African", "men", f"id{i:05d}",
                       f"{'x' * 60}_{i:03d}.mp4")
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(b"")
    rows.append({"path": rel.as_posix(), "kind": kind, "split": ("train", "test")[i % 4 < 2],
                 "seconds": str(2 + (i % 7) * 0.5)})
  with open(root / demo_pick.GROUND_TRUTH, "w", newline="") as f:
    writer = csv.DictWriter(f, GROUND_TRUTH_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
  return root, rows


def test_pick_first_and_longest(synth_tree):
  root, rows = synth_tree
  first = demo_pick.first_video(root, "FakeVideo-RealAudio")
  assert first == min((root / r["path"] for r in rows), key=str)
  longest = demo_pick.longest_video(root, "drift", "test")
  candidates = [r for r in rows if (r["kind"], r["split"]) == ("drift", "test")]
  best = max(float(r["seconds"]) for r in candidates)
  assert float(next(r for r in rows if root / r["path"] == longest)["seconds"]) == best


def test_pick_says_what_was_not_found(synth_tree, capsys):
  root, _ = synth_tree
  assert demo_pick.main(["first", str(root), "RealVideo-FakeAudio"]) == 1
  assert "no .mp4 under" in capsys.readouterr().err
  assert demo_pick.main(["longest", str(root), "--kind", "swap", "--split", "test"]) == 1
  assert "no video of kind 'swap'" in capsys.readouterr().err


def test_demo_script_has_no_pipe_into_head_or_ls():
  script = (REPO_ROOT / "tools" / "demo.sh").read_text()
  assert "| head" not in script and "$(ls" not in script


def test_a_failing_stage_is_named_with_the_line_that_explains_it(tmp_path):
  """The demo's own stage/error functions, run around a stage that fails."""
  script = (REPO_ROOT / "tools" / "demo.sh").read_text()
  functions = script[script.index("end_stage() {"):script.index("trap 'on_error $?' ERR")]
  test_script = tmp_path / "stages.sh"
  test_script.write_text(
      "set -eEuo pipefail\n"
      f"out={tmp_path}/out; mkdir -p $out/logs; start=$(date +%s); seconds=$out/s.tsv\n"
      "exec 3>&2\nstage_key='' stage_title='' stage_start=$start\n" + functions +
      "trap 'on_error $?' ERR\n"
      "stage one '1. fine'\necho fine\n"
      "stage two '2. broken'\n"
      "python3 -c 'import sys; sys.stderr.write(\"50%\\rStageError: no records in /x\\n\");"
      " sys.exit(3)'\n"
      "echo after\n")
  result = subprocess.run(["bash", str(test_script)], capture_output=True, text=True,
                          timeout=60)
  assert result.returncode == 3
  assert "after" not in result.stdout
  assert "stage '2. broken' failed (exit 3)" in result.stderr
  assert "StageError: no records in /x" in result.stderr.split("failed (exit 3)")[1]
  assert (tmp_path / "out" / "s.tsv").read_text().startswith("one\t")


@pytest.mark.parametrize("state,renders", [
    ("complete", False), ("failed", True), ("interrupted", True), ("absent", True)])
def test_the_synth_stage_renders_again_unless_a_complete_set_is_there(tmp_path, state, renders):
  """A failed or interrupted synthetic set is rendered again from the start on a re-run
  (--overwrite); a complete one is kept. Runs the script's own synth block with a `python`
  that only records its arguments."""
  script = (REPO_ROOT / "tools" / "demo.sh").read_text()
  block = script[script.index("\nstage synth "):script.index("\nstage records ")]
  block = block.split("\n", 2)[2]  # without the stage header line
  out = tmp_path / "out"
  synth = out / "synth" / "FakeAVCeleb_v1.2"
  if state != "absent":
    synth.mkdir(parents=True)
    (synth / "some_video.mp4").write_bytes(b"")
  if state in ("complete", "failed"):
    (synth / "meta_data.csv").write_text("source,target1\n")
  if state == "failed":
    (synth / "synthetic_failures.csv").write_text("path,error\n")
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "python").write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/called\n")
  (bin_dir / "python").chmod(0o755)
  test_script = tmp_path / "synth.sh"
  test_script.write_text(f"set -eEuo pipefail\nout={out}\nsynth={synth}\n" + block)
  subprocess.run(["bash", str(test_script)], check=True, timeout=60,
                 env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
  called = tmp_path / "called"
  assert called.exists() == renders
  if renders:
    assert "-m data.synth" in called.read_text() and "--overwrite" in called.read_text()


def _scores(path, rows):
  protocols.write_scores(path, [{"video_id": v, "track": 0, "dataset": "synthetic",
                                 "split": "test", "category": "c", "method": "m", "label": y,
                                 "score": s} for v, y, s in rows])


def test_summary_numbers_and_readme_table(tmp_path):
  truth = tmp_path / "gt.csv"
  with open(truth, "w", newline="") as f:
    writer = csv.DictWriter(f, ("path", "kind"))
    writer.writeheader()
    writer.writerows([{"path": "r1.mp4", "kind": "real"}, {"path": "r2.mp4", "kind": "real"},
                      {"path": "a.mp4", "kind": "lipsync"}, {"path": "b.mp4", "kind": "drift"}])
  fake_eval = tmp_path / "fakeout_eval"
  # Two tracks of r1: the video's score is their max (0.7), above drift's 0.6.
  _scores(fake_eval / "scores_synthetic_test.csv",
          [("r1", 0, 0.1), ("r1", 0, 0.7), ("r2", 0, 0.2), ("a", 1, 0.9), ("b", 1, 0.6)])
  inconsistency_eval = tmp_path / "inc_eval"
  _scores(inconsistency_eval / "synthetic" / "video_scores.csv",
          [("r1", 0, -3.0), ("r2", 0, -2.0), ("a", 1, -1.0), ("b", 1, -0.5)])
  seconds = tmp_path / "s.tsv"
  seconds.write_text("synth\t10.4\nrecords\t20\n")
  out = tmp_path / "summary.json"
  assert demo_summary.main([
      "write", "--out", str(out), "--seconds", str(seconds), "--ground-truth", str(truth),
      "--detector", f"fakeout={fake_eval}", "--detector", f"fakeout.scratch={fake_eval}",
      "--detector", f"inconsistency={inconsistency_eval}"]) == 0
  summary = json.loads(out.read_text())
  assert summary["seconds"] == {"synth": 10, "records": 20, "total": 30}
  assert summary["fakeout"]["auc"] == 75.0            # (1 + 0.5) / 2 pairs of (fake, real)
  assert summary["fakeout"]["auc_by_kind"] == {"drift": 50.0, "lipsync": 100.0}
  assert summary["fakeout"]["scratch_auc"] == 75.0
  assert summary["inconsistency"]["auc"] == 100.0
  low, high = summary["fakeout"]["auc_ci"]
  assert 0 <= low <= 75.0 <= high <= 100
  table = demo_summary.markdown(summary)
  assert "| fakeout | 75.0 (" in table and "| fakeout (scratch) | 75.0 (" in table


def test_summary_scores_a_fakeout_evaluation_by_another_column(tmp_path, capsys):
  """``FOLDER@-av_cosine``: the negated embedding agreement per track, max over a video's
  tracks (the pre-trained backbone alone); a missing column is named."""
  truth = tmp_path / "gt.csv"
  with open(truth, "w", newline="") as f:
    writer = csv.DictWriter(f, ("path", "kind"))
    writer.writeheader()
    writer.writerows([{"path": f"{v}.mp4", "kind": k} for v, k in
                      (("r1", "real"), ("r2", "real"), ("a", "lipsync"), ("b", "rvfa"))])
  rows = [("r1", 0, 0.2, 0.9), ("r1", 0, 0.2, 0.3), ("r2", 0, 0.9, 0.5), ("a", 1, 0.1, 0.1),
          ("b", 1, 0.1, 0.4)]
  protocols.write_scores(tmp_path / "eval" / "scores_synthetic.csv", [
      {"video_id": v, "track": t, "dataset": "synthetic", "split": "test", "category": "c",
       "method": "m", "label": y, "score": s, "av_cosine": c}
      for t, (v, y, s, c) in enumerate(rows)])
  seconds = tmp_path / "s.tsv"
  seconds.write_text("synth\t1\n")
  out = tmp_path / "summary.json"
  args = ["write", "--out", str(out), "--seconds", str(seconds), "--ground-truth", str(truth)]
  assert demo_summary.main(args + ["--detector", f"fakeout={tmp_path / 'eval'}", "--detector",
                                   f"fakeout.av_agreement={tmp_path / 'eval'}@-av_cosine"]) == 0
  summary = json.loads(out.read_text())["fakeout"]
  assert summary["auc"] == 0.0                 # by 'score' the fakes are below both reals
  # -cosine: r1 max(-0.9, -0.3) = -0.3, r2 -0.5; a -0.1 and b -0.4: 3 of 4 pairs right.
  assert summary["av_agreement_auc"] == 75.0
  assert summary["av_agreement_auc_by_kind"] == {"lipsync": 100.0, "rvfa": 50.0}
  assert demo_summary.main(args + ["--detector", f"x={tmp_path / 'eval'}@-av_cos"]) == 2
  assert "has no column 'av_cos'" in capsys.readouterr().err


def test_auc_interval_brackets_the_auc_and_narrows_with_more_videos():
  rng = np.random.default_rng(0)

  def rows(n):
    return ([{"label": 0, "score": s} for s in rng.normal(0, 1, n)] +
            [{"label": 1, "score": s} for s in rng.normal(1, 1, n)])
  few, many = rows(6), rows(200)
  low_few, high_few = protocols.auc_confidence_interval(few)
  low_many, high_many = protocols.auc_confidence_interval(many)
  assert low_few <= protocols.metrics_of_rows(few).auc <= high_few
  assert low_many <= protocols.metrics_of_rows(many).auc <= high_many
  assert high_many - low_many < (high_few - low_few) / 2


def test_readme_demo_table_is_the_committed_summary():
  """The README's demo numbers are generated from benchmarks/results/demo_summary.json (the
  summary.json of the run they report)."""
  summary = json.loads((REPO_ROOT / "benchmarks" / "results" / "demo_summary.json").read_text())
  # Rewritten with `python tools/demo_summary.py readme demo_out/summary.json README.md`.
  assert demo_summary.readme_block(summary) in (REPO_ROOT / "README.md").read_text()
