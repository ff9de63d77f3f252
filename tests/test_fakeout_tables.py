"""fakeout_jax.tables: paper cells from many runs -> the paper's tables (order, '-', averages)."""
import json

import pytest

from fakeout_jax import tables

ROW_X2_VA = "FakeOut TSM-50x2 V&A"
ROW_X1_V = "FakeOut TSM-50 V"


def _write_run(directory, cells, name="metrics.json"):
  directory.mkdir(parents=True, exist_ok=True)
  (directory / name).write_text(json.dumps({"paper_cells": [
      {"table": t, "row": r, "column": c, "value": v} for t, r, c, v in cells]}))
  return directory


@pytest.fixture
def runs(tmp_path):
  """Four Table 2 runs (one per held-out method), a Table 4 run with its Fig. 14 sweep."""
  paths = []
  for i, method in enumerate(("NT", "DF", "F2F", "FS")):
    paths.append(_write_run(tmp_path / f"t2_{method}" / "eval",
                            [("table2", ROW_X2_VA, method, 0.6 + 0.1 * i)]).parent)
  paths.append(_write_run(tmp_path / "t2_nt_x1v", [("table2", ROW_X1_V, "NT", 0.5)]))
  t4 = tmp_path / "ffpp_x2_va"
  _write_run(t4 / "eval_table4", [("table4", ROW_X2_VA, "DFDC", 0.75),
                                  ("table4", ROW_X2_VA, "FSh", 0.99)])
  _write_run(t4 / "eval_fig14", [("fig14", f"N={n}", "FSh", 0.9 + n / 100) for n in (9, 1, 5)],
             name="sweep_num_clips.json")
  (t4 / "config.json").write_text("{}")  # other JSON in a workdir is ignored
  return paths + [t4]


def test_tables_in_the_papers_order_with_averages_and_dashes(runs, tmp_path, capsys):
  out = tmp_path / "tables"
  assert tables.main(["--workdirs", *map(str, runs), "--out", str(out)]) == 0
  printed = capsys.readouterr().out
  assert printed.index("Table 2") < printed.index("Table 4") < printed.index("Fig. 14")

  table2 = (out / "table2.csv").read_text().splitlines()
  assert table2[0] == "row,DF,FS,F2F,NT,Avg"
  # Paper row order (TSM-50 V before TSM-50x2 V&A); the average only for the complete row.
  assert table2[1] == f"{ROW_X1_V},,,,0.5,"
  values = dict(zip(table2[0].split(","), table2[2].split(",")))
  assert float(values["NT"]) == pytest.approx(0.6) and float(values["DF"]) == pytest.approx(0.7)
  assert float(values["Avg"]) == pytest.approx((0.6 + 0.7 + 0.8 + 0.9) / 4)
  md = (out / "table2.md").read_text()
  assert f"| {ROW_X1_V} | - | - | - | 50.0 | - |" in md
  assert f"| {ROW_X2_VA} | 70.0 | 90.0 | 80.0 | 60.0 | 75.0 |" in md

  table4 = (out / "table4.md").read_text()
  assert "| | FSh | DFo | DFDC | DFDC filtered |" in table4
  assert f"| {ROW_X2_VA} | 99.0 | - | 75.0 | - |" in table4

  fig14 = (out / "fig14.csv").read_text().splitlines()
  assert [line.split(",")[0] for line in fig14[1:]] == ["N=1", "N=5", "N=9"]
  assert (out / "fig14.png").stat().st_size > 0
  assert (out / "tables.md").read_text().count("**") == 2 * 3
  sources = {c["source"] for c in json.loads((out / "cells.json").read_text())}
  assert any(s.endswith("eval_fig14/sweep_num_clips.json") for s in sources)


def test_later_runs_win_and_missing_runs_fail_at_the_end(tmp_path, capsys, caplog):
  first = _write_run(tmp_path / "a", [("table6", ROW_X2_VA, "AUC", 0.9)])
  second = _write_run(tmp_path / "b", [("table6", ROW_X2_VA, "AUC", 0.95),
                                       ("table6", ROW_X2_VA, "ACC", 0.8)])
  empty = tmp_path / "empty"
  empty.mkdir()
  paths = [first, second, empty, tmp_path / "no"]
  cells, failed = tables.collect(paths)
  assert failed == [str(empty), str(tmp_path / "no")]
  assert cells[("table6", ROW_X2_VA, "AUC")]["value"] == 0.95
  assert "replaces the value" in caplog.text
  assert "run `python -m fakeout_jax.evaluate" in caplog.text and "does not exist" in caplog.text
  assert tables.main(["--workdirs", *map(str, paths)]) == 1  # printed, then failed
  assert f"| {ROW_X2_VA} | 80.0 | 95.0 |" in capsys.readouterr().out


def test_nothing_to_tabulate_is_an_error(tmp_path):
  assert tables.main(["--workdirs", str(tmp_path)]) == 1


def test_unknown_tables_and_columns_follow_the_known_ones():
  cells = {("table5", ROW_X2_VA, "FakeAVCeleb (RVFA)"): {"value": 0.5},
           ("new", "tiny", "synthetic"): {"value": 0.9},
           ("table5", ROW_X2_VA, "DeepfakeTIMIT"): {"value": 0.7}}
  built = tables.build_tables(cells)
  assert list(built) == ["table5", "new"]
  assert list(built["table5"].columns) == ["FakeAVCeleb", "DeepfakeTIMIT", "FakeAVCeleb (RVFA)"]
  assert "| tiny | 90.0 |" in built["new"].markdown()


def test_fig13_rows_sort_by_shift_and_plot(tmp_path):
  cells = {("fig13", row, "FF++ real score"): {"value": v, "source": "x"}
           for row, v in (("+0.50 s", 0.7), ("-1.00 s", 0.8), ("+0.00 s", 0.3))}
  built = tables.build_tables(cells)
  assert list(built["fig13"].rows) == ["-1.00 s", "+0.00 s", "+0.50 s"]
  assert tables.plot_figure("fig13", built["fig13"], tmp_path / "f.png").stat().st_size > 0
  assert tables.plot_figure("table4", built["fig13"], tmp_path / "t.png") is None
