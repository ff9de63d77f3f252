r"""The FakeOut paper's tables and figures from many runs: ``python -m fakeout_jax.tables``.

  python -m fakeout_jax.tables --workdirs RUN1 RUN2 ... [--out DIR]

Every ``python -m fakeout_jax.evaluate`` run writes the paper cells its config fills
(``paper_cells`` in metrics.json, and in sweep_num_clips.json / sweep_audio_shift.json for the
studies). This command reads them from each RUN given: a workdir (its ``eval*/`` folders), an
evaluation folder, or one JSON file; and lays them out as the paper's Tables 2-7 and the data
of Figs. 5, 6, 13 and 14, in the paper's row and column order, with '-' for cells no run filled
(a row appears once any of its cells is filled). Printed as Markdown; with --out also written as
DIR/<table>.md and .csv, DIR/tables.md (all of them), DIR/cells.json (every cell with the file
it came from) and a PNG per figure.

When two runs fill the same cell, the later one on the command line wins (with a warning).
Numbers are in percent (AUC, accuracy; Fig. 13's mean scores are fake probabilities x 100).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import pathlib
import re
import sys
from typing import Optional, Sequence

from data import protocols
from fakeout_jax.configs import fig5_linear_probe
from fakeout_jax.configs import fig6_backbones
from fakeout_jax.configs import paper
from fakeout_jax.configs import table3_cross_approach

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Layout:
  """One paper table: its title, columns and rows in the paper's order.

  Rows or columns met in the cells but not listed here come after the listed ones, in the order
  met. ``averages``: a column that is the mean of others, filled when all of them are.
  ``numeric_rows``: order the rows by the number they start with (N=1, N=3, ...; -0.50 s ...).
  """
  title: str
  columns: tuple[str, ...]
  rows: tuple[str, ...] = ()
  averages: tuple[tuple[str, tuple[str, ...]], ...] = ()
  numeric_rows: bool = False
  plot: Optional[str] = None  # 'bars' or 'lines' for figures
  xlabel: str = ""


_VARIANT_ROWS = tuple(paper.row_name(v) for v in ("x1_v", "x1_va", "x2_v", "x2_va"))
_METHODS = tuple(paper.METHOD_ABBREVIATIONS.values())
_CROSS_DATASET = tuple(column for _, column in paper.CROSS_DATASET_SETS.values())


def _table3_columns() -> tuple[str, ...]:
  columns = []
  for direction, protocol in (("swap_to_reenactment", ("F2F", "NT")),
                              ("reenactment_to_swap", ("DF", "FS"))):
    name = table3_cross_approach.COLUMNS[direction]
    columns += [name] + [f"{name} ({m})" for m in protocol]
  return tuple(columns)


LAYOUTS = {
    "table2": Layout("Table 2: cross-manipulation generalisation on FF++ (trained on the other "
                     "three methods), video-level AUC %", _METHODS + ("Avg",), _VARIANT_ROWS,
                     averages=(("Avg", _METHODS),)),
    "table3": Layout("Table 3: cross-approach generalisation on FF++ (face swap: DF, FS; "
                     "reenactment: F2F, NT), video-level AUC %", _table3_columns(),
                     _VARIANT_ROWS),
    "table4": Layout("Table 4: cross-dataset generalisation, trained on FF++, video-level AUC %",
                     _CROSS_DATASET, _VARIANT_ROWS),
    "table5": Layout("Table 5: audio-visual datasets, trained on FF++, video-level AUC %",
                     ("FakeAVCeleb", "DeepfakeTIMIT"), _VARIANT_ROWS),
    "table6": Layout("Table 6: intra-dataset FF++ (c23), video-level accuracy and AUC %",
                     ("ACC", "AUC"), _VARIANT_ROWS),
    "table7": Layout("Table 7: DFDC without the dog-mask videos, video-level AUC %",
                     ("DFDC", "DFDC filtered"), _VARIANT_ROWS),
    "fig5": Layout("Fig. 5 / 15: fine-tuning vs linear probing, video-level AUC %",
                   ("FF++",) + _CROSS_DATASET,
                   tuple(f"{mode} {row[len('FakeOut '):]}" for row in _VARIANT_ROWS[::-1]
                         for mode in fig5_linear_probe.MODES.values()),
                   plot="bars"),
    "fig6": Layout("Fig. 6: pre-training of the TSM-50 video backbone (V), video-level AUC %",
                   ("FF++",) + _CROSS_DATASET,
                   tuple(row for row, _, _ in fig6_backbones.BACKBONES.values()), plot="bars"),
    "fig13": Layout("Fig. 13: audio shifted by S seconds: mean fake probability of the real "
                    "videos with audio (x 100) and AUC %",
                    ("FF++ real score", "FF++ AUC", "DFDC filtered real score",
                     "DFDC filtered AUC"), numeric_rows=True, plot="lines",
                    xlabel="audio shift (s)"),
    "fig14": Layout("Fig. 14: AUC % against the number of clips N per video", _CROSS_DATASET,
                    numeric_rows=True, plot="lines", xlabel="clips per face track (N)"),
    # Not the paper's: the README demo (fakeout_jax/configs/synthetic_tiny.py).
    "demo": Layout("Demo: a tiny FakeOut trained from scratch on the synthetic set, "
                   "video-level AUC %", ("synthetic",)),
}
# Tables in the paper's order; others (the demo's, any new one) follow.
ORDER = ("table2", "table3", "table4", "table5", "table6", "table7", "fig5", "fig6", "fig13",
         "fig14", "demo")


class TablesError(ValueError):
  """A run folder or file without any paper cells."""


def cell_files(path: pathlib.Path) -> list[pathlib.Path]:
  """The JSON files holding paper cells for one --workdirs entry."""
  if path.is_file():
    return [path]
  if not path.is_dir():
    raise TablesError(f"{path} does not exist")
  folders = [path] + sorted(p for p in path.glob("eval*") if p.is_dir())
  files = []
  for folder in folders:
    for candidate in sorted(folder.glob("*.json")):
      try:
        if "paper_cells" in json.loads(candidate.read_text()):
          files.append(candidate)
      except (json.JSONDecodeError, UnicodeDecodeError, TypeError):
        continue
  if not files:
    raise TablesError(f"no metrics.json or sweep_*.json with paper cells in {path} or its "
                      "eval*/ folders: run `python -m fakeout_jax.evaluate --config ... "
                      f"--checkpoint {path}` first")
  return files


def collect(paths: Sequence[str | pathlib.Path]) -> tuple[dict, list[str]]:
  """{(table, row, column): {'value', 'source'}} from every path, and the paths that failed."""
  cells, failed = {}, []
  for path in map(pathlib.Path, paths):
    try:
      files = cell_files(path)
    except TablesError as e:
      log.error("%s", e)
      failed.append(str(path))
      continue
    for file in files:
      for cell in json.loads(file.read_text())["paper_cells"]:
        key = (cell["table"], cell["row"], cell["column"])
        if key in cells and cells[key]["source"] != str(file):
          log.warning("%s / %s / %s: %s replaces the value of %s", *key, file,
                      cells[key]["source"])
        cells[key] = {"value": cell["value"], "source": str(file)}
  return cells, failed


def _leading_number(text: str) -> float:
  match = re.search(r"[-+]?\d+(\.\d+)?", text)
  return float(match.group()) if match else float("inf")


def _ordered(listed: Sequence[str], met: Sequence[str]) -> list[str]:
  return [x for x in listed if x in met] + [x for x in met if x not in listed]


def build_tables(cells: dict) -> dict[str, protocols.Table]:
  """One data.protocols.Table per paper table that has at least one cell."""
  by_table: dict[str, dict] = {}
  for (table, row, column), cell in cells.items():
    by_table.setdefault(table, {}).setdefault(row, {})[column] = cell["value"]
  tables = {}
  for name in [t for t in ORDER if t in by_table] + sorted(set(by_table) - set(ORDER)):
    values = by_table[name]
    layout = LAYOUTS.get(name, Layout(name, ()))
    met_columns = list(dict.fromkeys(c for row in values.values() for c in row))
    columns = list(layout.columns) + [c for c in met_columns if c not in layout.columns]
    rows = (sorted(values, key=_leading_number) if layout.numeric_rows
            else _ordered(layout.rows, list(values)))
    table_rows = {}
    for row in rows:
      row_values = dict(values[row])
      for average, parts in layout.averages:
        if all(p in row_values for p in parts):
          row_values[average] = sum(row_values[p] for p in parts) / len(parts)
      table_rows[row] = row_values
    tables[name] = protocols.Table(layout.title, columns, table_rows)
  return tables


def plot_figure(name: str, table: protocols.Table, path: pathlib.Path) -> Optional[pathlib.Path]:
  """Fig. 5/6 as grouped bars, Fig. 13/14 as lines (one per column)."""
  layout = LAYOUTS.get(name)
  if layout is None or layout.plot is None:
    return None
  import numpy as np
  from data import report
  rows, columns = list(table.rows), list(table.columns)
  fig, ax = report.figure(figsize=(max(5, 1.3 * len(columns)), 3.8))
  if layout.plot == "bars":
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
      heights = [100 * table.rows[row].get(c, np.nan) if table.rows[row].get(c) is not None
                 else np.nan for c in columns]
      ax.bar(np.arange(len(columns)) + i * width, heights, width, label=row)
    ax.set_xticks(np.arange(len(columns)) + 0.4 - width / 2, columns)
    ax.set(ylabel="AUC %")
  else:
    xs = [_leading_number(r) for r in rows]
    for column in columns:
      points = [(x, 100 * table.rows[r][column]) for x, r in zip(xs, rows)
                if table.rows[r].get(column) is not None]
      if points:
        ax.plot(*zip(*points), "o-", label=column)
    ax.set(xlabel=layout.xlabel, ylabel="%")
    ax.grid(alpha=0.3)
  ax.set_title(layout.title, fontsize=8)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  return path


def write(tables: dict[str, protocols.Table], cells: dict, out: pathlib.Path) -> None:
  out.mkdir(parents=True, exist_ok=True)
  for name, table in tables.items():
    table.save(out, name)
    plot_figure(name, table, out / f"{name}.png")
  (out / "tables.md").write_text("\n".join(t.markdown() for t in tables.values()))
  (out / "cells.json").write_text(json.dumps(
      [{"table": t, "row": r, "column": c, **v} for (t, r, c), v in sorted(cells.items())],
      indent=1))


def main(argv: Optional[Sequence[str]] = None) -> int:
  from data import cli_errors
  return cli_errors.handle(lambda: _main(argv), verbose=cli_errors.verbose_requested(argv),
                           user_errors=(TablesError,))


def _main(argv: Optional[Sequence[str]]) -> int:
  from data import cli_errors
  from data import logs
  parser = argparse.ArgumentParser(prog="python -m fakeout_jax.tables",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdirs", nargs="+", required=True,
                      help="finetune workdirs, evaluation folders or metrics/sweep JSON files")
  parser.add_argument("--out", type=pathlib.Path, help="write the tables (md, csv, png) here")
  parser.add_argument("-v", "--verbose", action="store_true")
  args = parser.parse_args(argv)
  logs.setup(args.verbose)
  if args.out:
    cli_errors.writable_dir(args.out)
  cells, failed = collect(args.workdirs)
  tables = build_tables(cells)
  for table in tables.values():
    print(table.markdown())
  if args.out and tables:
    write(tables, cells, args.out)
    log.info("wrote %d tables to %s", len(tables), args.out)
  if not tables:
    log.error("no paper cells found in %s", ", ".join(args.workdirs))
    return 1
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
