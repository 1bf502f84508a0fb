"""The documentation that code and configs point to exists, and no file points outside the repository."""

import pathlib
import re
import subprocess

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / 'docs'
THIS_FILE = pathlib.Path(__file__).resolve().relative_to(REPO_ROOT).as_posix()
# Notes that are not part of the repository; code must cite docs/ instead.
FOREIGN_REFERENCE = re.compile(r'spec/|\b(?:MODEL|DATASETS|GOLDEN|STACK)\.md')
DOC_REFERENCE = re.compile(r'docs/([\w.-]+\.md)')
QUIRK_REFERENCE = re.compile(r'\bquirks? Q(\d+)|\(Q(\d+)[),;]')
MARKDOWN_LINK = re.compile(r'\]\(([^)\s]*)\)')
_SOURCE_DIRS = ('benchmarks', 'cascadeformer_jax', 'configs', 'data_builders', 'docs', 'tests')


def _tracked_files() -> list[str]:
  """Repository-relative paths of the tracked files (the source folders when git is unavailable)."""
  try:
    listing = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO_ROOT, capture_output=True, check=True,
                             timeout=60).stdout.decode('utf-8')
    return [name for name in listing.split('\0') if name and (REPO_ROOT / name).is_file()]
  except (OSError, subprocess.SubprocessError):
    names = [path.name for path in REPO_ROOT.iterdir() if path.is_file()]
    for folder in _SOURCE_DIRS:
      names += [path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / folder).rglob('*')
                if path.is_file() and '__pycache__' not in path.parts]
    return names


def _text(name: str) -> str:
  return (REPO_ROOT / name).read_bytes().decode('utf-8', errors='ignore')


def _slug(heading: str) -> str:
  """The anchor GitHub gives a markdown heading."""
  return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def _anchors(path: pathlib.Path) -> set[str]:
  return {_slug(line.lstrip('#')) for line in path.read_text().splitlines() if re.match(r'#{1,6} ', line)}


@pytest.fixture(scope='module')
def tracked() -> dict[str, str]:
  names = _tracked_files()
  assert 'README.md' in names and 'cascadeformer_jax/__init__.py' in names
  return {name: _text(name) for name in names}


def test_no_references_to_notes_outside_the_repository(tracked):
  offenders = [f'{name}:{number}: {line.strip()}'
               for name, text in tracked.items()
               if not name.startswith('docs/') and name not in ('README.md', THIS_FILE)
               for number, line in enumerate(text.splitlines(), 1) if FOREIGN_REFERENCE.search(line)]
  assert not offenders, 'cite docs/ instead of notes outside the repository:\n' + '\n'.join(offenders)


def test_every_cited_doc_exists(tracked):
  cited = {(match.group(1), name) for name, text in tracked.items() for match in DOC_REFERENCE.finditer(text)}
  assert {doc for doc, _ in cited} >= {'original_code.md', 'datasets.md', 'golden.md'}
  missing = sorted(f'{name} cites docs/{doc}' for doc, name in cited if not (DOCS / doc).is_file())
  assert not missing, '\n'.join(missing)


def test_every_cited_quirk_has_a_section(tracked):
  sections = {int(number) for number in re.findall(r'^### Q(\d+)\. ', (DOCS / 'original_code.md').read_text(),
                                                   flags=re.MULTILINE)}
  assert sections >= set(range(1, 13))
  cited = {(int(match.group(1) or match.group(2)), name)
           for name, text in tracked.items() for match in QUIRK_REFERENCE.finditer(text)}
  assert cited, 'no quirk is cited anywhere: the pattern is out of date'
  unknown = sorted(f'{name} cites Q{number}' for number, name in cited if number not in sections)
  assert not unknown, '\n'.join(unknown)


@pytest.mark.parametrize('page', ['README.md', 'docs/original_code.md', 'docs/datasets.md', 'docs/golden.md'])
def test_relative_links_resolve(page):
  source = REPO_ROOT / page
  broken = []
  for target in MARKDOWN_LINK.findall(source.read_text()):
    if re.match(r'[a-z]+:', target):
      continue  # An absolute URL.
    file_part, _, anchor = target.partition('#')
    destination = (source.parent / file_part).resolve() if file_part else source
    if not destination.exists():
      broken.append(f'{target}: no such file')
    elif anchor and (destination.suffix != '.md' or anchor not in _anchors(destination)):
      broken.append(f'{target}: no such heading')
  assert not broken, f'{page}: ' + '; '.join(broken)
