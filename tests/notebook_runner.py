"""Runs a notebook's code cells as one Python script: how the tests execute notebooks/.

Cells tagged `colab` (installation on Colab) are skipped; the cell tagged `parameters` is
followed by the test's own values; IPython's display functions are stubbed (showing output is
the notebook front end's job). Shell (`!`) and magic (`%`) lines are only allowed in skipped
cells, so every executed line is plain Python.
"""
import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]

_IPYTHON_STUB = '''
import sys, types
display_module = types.ModuleType("IPython.display")
display_module.shown = []
display_module.display = lambda *objects: display_module.shown.extend(objects)
display_module.Image = lambda filename=None, **kw: ("image", filename)
display_module.HTML = lambda data=None, **kw: ("html", len(data or ""))
display_module.Markdown = lambda data=None, **kw: ("markdown", len(data or ""))
ipython = types.ModuleType("IPython")
ipython.display = display_module
ipython.get_ipython = lambda: None
ipython.version_info = (9, 0, 0)
sys.modules.update({"IPython": ipython, "IPython.display": display_module})
'''


def notebook_script(path: pathlib.Path, parameters: dict) -> str:
  notebook = json.loads(path.read_text())
  parts = [_IPYTHON_STUB]
  for index, cell in enumerate(notebook["cells"]):
    if cell["cell_type"] != "code":
      continue
    tags = cell.get("metadata", {}).get("tags", [])
    source = "".join(cell["source"])
    if "colab" in tags:
      continue
    bad = [line for line in source.splitlines() if line.lstrip().startswith(("!", "%"))]
    if bad:
      raise AssertionError(f"{path.name} cell {index} runs shell/magic lines outside a "
                           f"'colab' cell: {bad}")
    parts.append(f"# --- cell {index}\n{source}")
    if "parameters" in tags:
      parts.append("# --- test parameters\n" + "\n".join(
          f"{name} = {value!r}" for name, value in parameters.items()))
  parts.append("print('NOTEBOOK-OK', len(display_module.shown))")
  return "\n\n".join(parts)


def run_notebook(path: pathlib.Path, parameters: dict, cwd: pathlib.Path,
                 timeout: int = 900) -> str:
  env = dict(os.environ, PYTHONPATH=str(REPO),
             XLA_FLAGS="--xla_force_host_platform_device_count=2")
  result = subprocess.run([sys.executable, "-c", notebook_script(path, parameters)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)
  if result.returncode != 0 or "NOTEBOOK-OK" not in result.stdout:
    raise AssertionError(f"{path.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
  return result.stdout
