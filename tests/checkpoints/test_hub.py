"""hf: sources against a loopback server with the Hub's file layout: download, cache, revisions, offline, convert."""

import os
import pathlib
import subprocess
import sys

import pytest

from cascadeformer_jax.checkpoints import hub
from cascadeformer_jax.models import ModelConfig
from tests.checkpoints import original_layout
from tests.checkpoints import pt_files
from tests.checkpoints.hub_server import HubRepository
from tests.checkpoints.hub_server import HubServer

pytest.importorskip('huggingface_hub')

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
FOLDER = 'CascadeFormer_1.0_best_checkpoints/BEST_N_UCLA_1_0'

# Run in a fresh process: huggingface_hub reads $HF_ENDPOINT, $HF_HOME and $HF_HUB_OFFLINE when imported.
SCRIPT = """
import sys
from cascadeformer_jax.checkpoints import hub
for source in sys.argv[1:]:
  try:
    if source.startswith('convert:'):
      from cascadeformer_jax.models import ModelConfig
      print(hub.published_model_dir(source[len('convert:'):], ModelConfig(**{config})))
    else:
      folder = hub.download_published_folder(source)
      print(folder, ','.join(sorted(p.name for p in folder.iterdir())))
  except hub.HubError as e:
    print('error:', e)
"""


CONFIG = dict(variant='1.0', layout='nucla', num_joints=20, coords=3, d_model=8, num_heads=2, num_layers=1,
              num_classes=10, pos_len=16, ffn_dim=8)


@pytest.fixture(name='repository')
def repository_fixture(tmp_path):
  files = {}
  for role, tensors in original_layout.random_state_dicts(ModelConfig(**CONFIG)).items():
    path = pt_files.write_state_dict(tmp_path / f'NUCLA_{role}.pt', tensors)
    files[f'{FOLDER}/{path.name}'] = path.read_bytes()
  repository = HubRepository(hub.DEFAULT_REPO)
  repository.commit({name: data for name, data in files.items() if 'pretrained' in name}, 'v0')
  repository.commit(files, 'main')
  return repository


def _run(tmp_path, endpoint, *sources, offline=False):
  env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), JAX_PLATFORMS='cpu', HF_ENDPOINT=endpoint,
             HF_HOME=str(tmp_path / 'hf'), CASCADEFORMER_CACHE=str(tmp_path / 'converted'),
             HF_HUB_DISABLE_PROGRESS_BARS='1', HF_HUB_DISABLE_TELEMETRY='1', HF_HUB_OFFLINE='1' if offline else '0')
  env.pop('HF_HUB_CACHE', None)
  result = subprocess.run([sys.executable, '-c', SCRIPT.format(config=CONFIG), *sources],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout.strip().splitlines()


def test_download_cache_revisions_offline_and_conversion(tmp_path, repository):
  all_files = 'NUCLA_finetuned_T1.pt,NUCLA_finetuned_T2.pt,NUCLA_finetuned_cross_attn.pt,NUCLA_finetuned_head.pt,' \
              'NUCLA_pretrained.pt'
  with HubServer(repository) as server:
    lines = _run(tmp_path, server.url, 'hf:BEST_N_UCLA_1_0', f'hf:{FOLDER}@v0',
                 f'hf:{hub.DEFAULT_REPO}/{FOLDER}', 'hf:NO_SUCH_FOLDER', 'hf:someone/else/folder',
                 f'hf:{FOLDER}@no-such-tag', f'convert:hf:{FOLDER}', f'convert:hf:{FOLDER}')
    downloads = [r for r in server.requests if '/resolve/' in r and r.startswith('GET')]
  assert lines[0].endswith(f'{FOLDER} {all_files}') and '/hf/hub/' in lines[0]
  assert lines[1].endswith(f'{FOLDER} NUCLA_pretrained.pt')  # the pinned tag has only the pretrained file
  assert lines[2] == lines[0]
  assert lines[3] == f"error: hf:{hub.DEFAULT_REPO}/NO_SUCH_FOLDER: no folder 'NO_SUCH_FOLDER' with .pt files in " \
                     f'the repository {hub.DEFAULT_REPO}'
  assert lines[4].startswith('error: hf:someone/else/folder: the repository someone/else does not exist')
  assert lines[5] == f"error: hf:{hub.DEFAULT_REPO}/{FOLDER}@no-such-tag: the repository {hub.DEFAULT_REPO} has " \
                     "no revision 'no-such-tag'"
  converted = pathlib.Path(lines[6])
  assert lines[7] == lines[6] and (converted / 'model.json').is_file()
  assert converted.parent == tmp_path / 'converted' / 'converted'
  assert len(downloads) == 5  # every file once, whatever the number of uses

  # Offline: the cache answers; a revision that was never downloaded is refused in one line naming the cache.
  lines = _run(tmp_path, 'http://127.0.0.1:9', 'hf:BEST_N_UCLA_1_0', f'hf:{FOLDER}@v0', f'hf:{FOLDER}@v1',
               offline=True)
  assert lines[0].endswith(all_files) and lines[1].endswith('NUCLA_pretrained.pt')
  assert lines[2] == (f'error: cannot download hf:{hub.DEFAULT_REPO}/{FOLDER}@v1: the Hugging Face Hub '
                      f'(http://127.0.0.1:9) is not reachable (HF_HUB_OFFLINE is set) and the folder is not in the '
                      f'cache {tmp_path / "hf" / "hub"}')


def test_no_network_and_empty_cache(tmp_path):
  lines = _run(tmp_path, 'http://127.0.0.1:9', 'hf:BEST_N_UCLA_1_0')
  assert lines == [f'error: cannot download hf:{hub.DEFAULT_REPO}/BEST_N_UCLA_1_0: the Hugging Face Hub '
                   '(http://127.0.0.1:9) is not reachable and the folder is not in the cache '
                   f'{tmp_path / "hf" / "hub"}']


def test_parse_source_and_local_folders(tmp_path):
  assert hub.parse_source('hf:A/B') == hub.HubFolder(hub.DEFAULT_REPO, 'A/B')
  assert hub.parse_source('hf:o/r/A/B@v1') == hub.HubFolder('o/r', 'A/B', 'v1')
  assert str(hub.parse_source('hf:X')) == f'hf:{hub.DEFAULT_REPO}/X'
  for bad in ('hf:', 'hf:X@', 'hf:../X'):
    with pytest.raises(hub.HubError):
      hub.parse_source(bad)
  assert hub.download_published_folder(str(tmp_path)) == tmp_path
  assert hub.download_published_folder(f'hf:{tmp_path}') == tmp_path  # older form: hf:<local folder>
