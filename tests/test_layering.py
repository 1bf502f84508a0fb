"""The layers of the package and of `data_builders`: no import goes up a layer, and no two parts import each other.

A part is a room of the package (a subpackage: ``run``, ``models``, ``train``, ...), one of the thin modules at its
root (``api``, ``main``, ...), or the ``data_builders`` package as a whole. `data.layouts`, the joint table that both
packages read, and `config.schema`, the declaration of every config field that the layers above read, are parts
of their own at the bottom and import nothing from either package. Imports inside functions count as much as those
at the top of a file.
"""

import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ('cascadeformer_jax', 'data_builders')

# Bottom to top. A part may import parts of its own layer or of lower ones.
LAYERS = (
    ('run', 'data.layouts', 'config.schema'),
    ('data_builders',),
    ('models', 'data'),
    ('objectives', 'checkpoints'),
    ('evaluate',),
    ('deploy',),
    ('train',),
    ('config',),
    ('experiment',),
    ('api', 'main', 'predict', 'stream', 'ensemble', 'convert', 'export', '__init__'),
)
LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}
LEAF_MODULES = ('data.layouts', 'config.schema')


def _part(module: str) -> str:
  """'cascadeformer_jax.train.trainer' -> 'train'; every module of data_builders -> 'data_builders'."""
  package, *names = module.split('.')
  if package == 'data_builders':
    return 'data_builders'
  if not names:
    return '__init__'
  for leaf in LEAF_MODULES:
    if '.'.join(names).startswith(leaf):
      return leaf
  return names[0]


def _module_name(path: pathlib.Path) -> str:
  relative = path.relative_to(REPO).with_suffix('')
  parts = list(relative.parts)
  if parts[-1] == '__init__' and len(parts) > 1:
    parts = parts[:-1]
  return '.'.join(parts)


def _ours(module: str) -> bool:
  return module.split('.')[0] in PACKAGES


def _is_module(name: str) -> bool:
  path = REPO.joinpath(*name.split('.'))
  return path.with_suffix('.py').is_file() or (path / '__init__.py').is_file()


def _imports(path: pathlib.Path) -> set[str]:
  """Modules of the two packages imported by a file (absolute imports only; they use no relative ones)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names if _ours(alias.name))
    elif isinstance(node, ast.ImportFrom) and node.module and _ours(node.module):
      assert node.level == 0, f'{path}: relative import'
      for alias in node.names:  # `from cascadeformer_jax.data import layouts` imports the module `layouts`.
        submodule = f'{node.module}.{alias.name}'
        found.add(submodule if _is_module(submodule) else node.module)
  return found


def _edges() -> dict[str, set[str]]:
  edges: dict[str, set[str]] = {}
  for path in sorted(p for package in PACKAGES for p in (REPO / package).rglob('*.py')):
    module = _module_name(path)
    for imported in _imports(path):
      edges.setdefault(module, set()).add(imported)
  return edges


def upward_imports() -> list[str]:
  problems = []
  for module, imported in sorted(_edges().items()):
    source = _part(module)
    for target in sorted(imported):
      target_part = _part(target)
      for part in (source, target_part):
        if part not in LAYER_OF:
          problems.append(f'{part} (imported by or importing {module}) is in no layer of tests/test_layering.py')
      if source in LAYER_OF and target_part in LAYER_OF and LAYER_OF[target_part] > LAYER_OF[source]:
        problems.append(f'{module} (layer {LAYER_OF[source]}) imports {target} (layer {LAYER_OF[target_part]})')
  return sorted(set(problems))


def part_cycles() -> list[list[str]]:
  """Strongly connected sets of more than one part in the part-level import graph."""
  graph: dict[str, set[str]] = {}
  for module, imported in _edges().items():
    source = _part(module)
    graph.setdefault(source, set()).update(_part(t) for t in imported if _part(t) != source)
  index, low, stack, on_stack, components = {}, {}, [], set(), []

  def visit(node: str) -> None:
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for nxt in sorted(graph.get(node, ())):
      if nxt not in index:
        visit(nxt)
        low[node] = min(low[node], low[nxt])
      elif nxt in on_stack:
        low[node] = min(low[node], index[nxt])
    if low[node] == index[node]:
      component = []
      while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == node:
          break
      if len(component) > 1:
        components.append(sorted(component))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return components


def test_no_import_goes_up_a_layer():
  assert upward_imports() == []


def test_no_import_cycles_between_parts():
  assert part_cycles() == []


def test_leaf_modules_import_nothing_from_the_packages():
  for leaf in LEAF_MODULES:
    path = REPO / 'cascadeformer_jax' / (leaf.replace('.', '/') + '.py')
    assert _imports(path) == set(), leaf
