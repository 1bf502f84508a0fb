"""Published folders from the Hugging Face Hub: download through its cache, convert once, reuse.

A source ``hf:[<owner>/<repo>/]<folder>[@<revision>]`` names a folder of ``.pt`` files in a Hub repository
(default `DEFAULT_REPO`). ``<folder>`` is a path in the repository (``CascadeFormer_1.0_best_checkpoints/
BEST_N_UCLA_1_0``) or the name of one folder anywhere in it (``BEST_N_UCLA_1_0``); a path of three or more parts
starts with the repository. ``<revision>`` pins a branch, tag or commit.

Downloads go through `huggingface_hub` (the optional extra ``hub``) and its cache ($HF_HOME, $HF_HUB_CACHE); with
$HF_HUB_OFFLINE=1 only the cache is used. The converted model directory is cached too, under
$CASCADEFORMER_CACHE (default ~/.cache/cascadeformer_jax)/converted/<key>, the key made of the files' content
hashes and the architecture, so each published folder is converted once. Only the download imports no JAX.
"""

import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
from typing import Any

PREFIX = 'hf:'
DEFAULT_REPO = 'YusenPeng/CascadeFormerCheckpoints'
CACHE_ENVIRONMENT_VARIABLE = 'CASCADEFORMER_CACHE'


class HubError(ValueError):
  """A published folder could not be found or downloaded; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class HubFolder:
  """A folder of a Hub repository at a revision (None = the default branch)."""

  repo_id: str
  path: str
  revision: str | None = None

  def __str__(self) -> str:
    return f'{PREFIX}{self.repo_id}/{self.path}' + (f'@{self.revision}' if self.revision else '')


def is_hub_source(source: str | os.PathLike) -> bool:
  return isinstance(source, str) and source.startswith(PREFIX)


def parse_source(source: str) -> HubFolder:
  """``hf:[<owner>/<repo>/]<folder>[@<revision>]`` -> HubFolder."""
  if not is_hub_source(source):
    raise HubError(f'{source!r} is not a Hub source (expected {PREFIX}[<owner>/<repo>/]<folder>[@<revision>])')
  body, revision = source[len(PREFIX):], None
  if '@' in body:
    body, revision = body.rsplit('@', 1)
    if not revision:
      raise HubError(f'{source!r}: empty revision after "@"')
  parts = [part for part in body.strip('/').split('/') if part]
  if not parts:
    raise HubError(f'{source!r} names no folder (expected {PREFIX}[<owner>/<repo>/]<folder>[@<revision>])')
  if any(part in ('.', '..') for part in parts):
    raise HubError(f'{source!r}: a Hub folder path may not contain "." or ".."')
  if len(parts) >= 3:
    return HubFolder(f'{parts[0]}/{parts[1]}', '/'.join(parts[2:]), revision)
  return HubFolder(DEFAULT_REPO, '/'.join(parts), revision)


def _hub_library():
  try:
    import huggingface_hub  # pylint: disable=g-import-not-at-top
    from huggingface_hub import constants  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    raise HubError('downloading from the Hugging Face Hub needs the huggingface_hub package: '
                   "pip install 'cascadeformer-jax[hub]'") from None
  return huggingface_hub


def download_published_folder(source: str | os.PathLike) -> pathlib.Path:
  """The local folder of ``.pt`` files for ``source``: a local path as it is, an ``hf:`` source downloaded.

  An ``hf:<path>`` whose path is an existing local folder is that folder (the form older versions accepted).
  """
  if not is_hub_source(source):
    return pathlib.Path(source)
  local = pathlib.Path(str(source)[len(PREFIX):])
  if local.is_dir():
    return local
  folder = parse_source(str(source))
  hub = _hub_library()
  from huggingface_hub import errors  # pylint: disable=g-import-not-at-top

  cache = hub.constants.HF_HUB_CACHE
  patterns = [f'{folder.path}/*.pt', f'*/{folder.path}/*.pt']
  try:
    root = pathlib.Path(hub.snapshot_download(folder.repo_id, revision=folder.revision, allow_patterns=patterns))
  except errors.RevisionNotFoundError:
    raise HubError(f'{folder}: the repository {folder.repo_id} has no revision {folder.revision!r}') from None
  except errors.RepositoryNotFoundError:
    raise HubError(f'{folder}: the repository {folder.repo_id} does not exist on the Hub '
                   f'({hub.constants.ENDPOINT}) or is private') from None
  except errors.LocalEntryNotFoundError:
    offline = ' (HF_HUB_OFFLINE is set)' if hub.constants.HF_HUB_OFFLINE else ''
    raise HubError(f'cannot download {folder}: the Hugging Face Hub ({hub.constants.ENDPOINT}) is not '
                   f'reachable{offline} and the folder is not in the cache {cache}') from None
  except (errors.HfHubHTTPError, OSError) as e:
    raise HubError(f'cannot download {folder}: {str(e).splitlines()[0]}') from None
  candidates = sorted({path.parent for path in root.rglob('*.pt')
                       if path.parent.relative_to(root).as_posix() == folder.path
                       or path.parent.relative_to(root).as_posix().endswith('/' + folder.path)})
  if not candidates:
    raise HubError(f'{folder}: no folder {folder.path!r} with .pt files in the repository {folder.repo_id}'
                   + (f' at {folder.revision}' if folder.revision else ''))
  if len(candidates) > 1:
    names = ', '.join(c.relative_to(root).as_posix() for c in candidates)
    raise HubError(f'{folder}: {folder.path!r} matches several folders ({names}); give the full path')
  return candidates[0]


def cache_root() -> pathlib.Path:
  default = pathlib.Path('~/.cache/cascadeformer_jax').expanduser()
  return pathlib.Path(os.environ.get(CACHE_ENVIRONMENT_VARIABLE) or default).expanduser()


def folder_key(folder: pathlib.Path, config: Any | None) -> str:
  """Hash of the folder's ``.pt`` contents and the architecture they are converted to.

  Files in the Hub cache are links to blobs named by their content hash, which is used without reading them.
  """
  from cascadeformer_jax.checkpoints import checkpoint_io  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.checkpoints.convert import file_sha256  # pylint: disable=g-import-not-at-top

  digest = hashlib.sha256(checkpoint_io.FORMAT.encode())
  for path in sorted(folder.glob('*.pt')):
    blob = path.resolve()
    content = blob.name if path.is_symlink() and blob.parent.name == 'blobs' else file_sha256(path)
    digest.update(f'{path.name}:{content}\n'.encode())
  digest.update(json.dumps(config.to_dict() if config else 'detected', sort_keys=True).encode())
  return digest.hexdigest()[:24]


def published_model_dir(source: str | os.PathLike, config: Any | None = None) -> pathlib.Path:
  """The model directory converted from ``source`` (an ``hf:`` source or a local folder), converted on first use.

  Args:
    source: see `download_published_folder`.
    config: the architecture (a ModelConfig); None = the published model whose sizes match the weights.
  """
  from cascadeformer_jax.checkpoints import checkpoint_io  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.checkpoints.convert import convert_folder  # pylint: disable=g-import-not-at-top

  folder = download_published_folder(source)
  target = cache_root() / 'converted' / folder_key(folder, config)
  if checkpoint_io.is_model_dir(target):
    return target
  staging = target.with_name(f'{target.name}.partial-{os.getpid()}')
  shutil.rmtree(staging, ignore_errors=True)
  try:
    convert_folder(folder, staging, config)
    try:
      staging.rename(target)
    except OSError:
      if not checkpoint_io.is_model_dir(target):  # Not a concurrent conversion that finished first.
        raise
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return target
