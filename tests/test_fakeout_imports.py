"""fakeout_jax's module structure: no command imports another command, no import cycles.

Shared code lives in library modules (state, scoring, studies, input_pipeline, checkpoints,
models); a command (a module with a command line) must not reach into another command.
"""
import ast
import pathlib

from tests.conftest import REPO_ROOT

PACKAGE = pathlib.Path(REPO_ROOT) / "fakeout_jax"
COMMANDS = {"fakeout_jax." + name for name in
            ("finetune", "pretrain", "evaluate", "predict", "convert", "tables")}


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
  """Module -> the fakeout_jax modules it imports (anywhere in the file, lazily or not)."""
  modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
  graph = {}
  for name, path in modules.items():
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fakeout_jax"):
        for alias in node.names:
          full = f"{node.module}.{alias.name}"
          deps.add(full if full in modules else node.module)
      elif isinstance(node, ast.Import):
        deps |= {a.name for a in node.names if a.name.startswith("fakeout_jax")}
    graph[name] = deps - {name}
  return graph


def test_no_command_imports_another_command():
  graph = _imports()
  assert COMMANDS - {"fakeout_jax.pretrain"} <= set(graph)
  offenders = {m: sorted(graph[m] & COMMANDS) for m in graph if graph[m] & COMMANDS}
  assert not offenders, offenders


def test_no_import_cycles():
  graph = _imports()
  # Package -> its own submodules is how __init__ re-exports; not a cycle of code.
  edges = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
  visiting, done, cycles = set(), set(), []

  def visit(module, path):
    if module in done:
      return
    if module in visiting:
      cycles.append(path[path.index(module):] + [module])
      return
    visiting.add(module)
    for dep in sorted(edges.get(module, ())):
      visit(dep, path + [module])
    visiting.discard(module)
    done.add(module)

  for module in sorted(edges):
    visit(module, [])
  assert not cycles, cycles
