"""Run-environment settings: matmul precision, PRNG, compilation cache, profile range and the start-up banner."""

import io
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cascadeformer_jax.run import runtime


@pytest.fixture
def restore_jax_config():
  names = ('jax_default_matmul_precision', 'jax_default_prng_impl', 'jax_compilation_cache_dir',
           'jax_persistent_cache_min_compile_time_secs', 'jax_persistent_cache_min_entry_size_bytes')
  saved = {name: getattr(jax.config, name) for name in names}
  yield
  for name, value in saved.items():
    jax.config.update(name, value)


def test_matmul_precision_is_applied(restore_jax_config):
  runtime.apply_matmul_precision('highest')
  assert jax.config.jax_default_matmul_precision == 'highest'
  lowered = jax.jit(lambda a, b: a @ b).lower(jnp.ones((4, 4)), jnp.ones((4, 4))).as_text()
  assert 'HIGHEST' in lowered
  runtime.apply_matmul_precision('tensorfloat32')
  assert jax.config.jax_default_matmul_precision == 'tensorfloat32'
  runtime.apply_matmul_precision('default')
  assert jax.config.jax_default_matmul_precision is None
  with pytest.raises(ValueError, match="config.matmul_precision must be one of .* got 'fp32'"):
    runtime.apply_matmul_precision('fp32')


def test_prng_impl(restore_jax_config):
  default = jax.random.key_data(jax.random.key(0))
  runtime.apply_prng_impl('rbg')
  assert jax.random.key_impl(jax.random.key(0)) == jax.random.key_impl(jax.random.key(0, impl='rbg'))
  assert jax.random.key_data(jax.random.key(0)).shape != default.shape
  runtime.apply_prng_impl('threefry2x32')
  np.testing.assert_array_equal(jax.random.key_data(jax.random.key(0)), default)
  with pytest.raises(ValueError, match='config.prng_impl must be one of'):
    runtime.apply_prng_impl('threefry')


def test_compilation_cache(restore_jax_config, tmp_path, monkeypatch):
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
  assert runtime.default_compilation_cache_dir() == tmp_path / 'cache' / 'cascadeformer_jax' / 'xla'
  assert runtime.setup_compilation_cache('') == tmp_path / 'cache' / 'cascadeformer_jax' / 'xla'
  assert jax.config.jax_compilation_cache_dir == str(tmp_path / 'cache' / 'cascadeformer_jax' / 'xla')
  assert runtime.setup_compilation_cache(str(tmp_path / 'mine'), min_compile_seconds=0.5) == tmp_path / 'mine'
  assert (tmp_path / 'mine').is_dir()
  assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.5
  assert runtime.setup_compilation_cache('off') is None
  (tmp_path / 'file').write_text('')
  with pytest.raises(ValueError, match='config.compilation_cache_dir: cannot create'):
    runtime.setup_compilation_cache(str(tmp_path / 'file' / 'sub'))


def test_count_compilations_counts_compiled_and_cached_programs(restore_jax_config, tmp_path):
  runtime.setup_compilation_cache(str(tmp_path / 'xla'), min_compile_seconds=0)
  x = np.arange(13.0)
  with runtime.count_compilations() as count:
    jax.jit(lambda v: v * 5 + 1)(x)
    jax.jit(lambda v: v * 5 + 1)(x)  # another function with the same program: loaded from the persistent cache
    jax.jit(lambda v: v * 5 + 1)(x[1:])  # another shape
  assert (count.compiled, count.loaded, count.total) == (2, 1, 3), count
  function = jax.jit(lambda v: v - 2)
  function(x)
  with runtime.count_compilations() as count:
    function(x)  # already compiled
  assert count.total == 0


def test_profile_steps_parsing_and_range():
  assert runtime.parse_profile_steps('') is None
  assert runtime.parse_profile_steps('10:15') == runtime.ProfileRange(10, 15, '')
  assert runtime.parse_profile_steps('finetune:0:3') == runtime.ProfileRange(0, 3, 'finetune')
  for bad in ('10', '5:5', '7:3', '-1:2', 'a:b', '1:2:3:4'):
    with pytest.raises(ValueError, match='config.profile_steps'):
      runtime.parse_profile_steps(bad)
  with pytest.raises(ValueError, match="unknown stage 'probe'"):
    runtime.parse_profile_steps('probe:1:2')
  profile = runtime.parse_profile_steps('8:12')
  profile.check_within(12, 'finetune')
  with pytest.raises(ValueError, match='outside the finetune stage, which has 10 steps'):
    profile.check_within(10, 'finetune')


def test_banner_and_gpu_warning(monkeypatch):
  line, warning = runtime.startup_banner({'matmul_precision': 'highest'}, gpu_visible=False)
  assert f'{jax.device_count()} x ' in line and f'({jax.default_backend()})' in line
  assert '1 process(es)' in line and 'matmul_precision highest' in line
  assert warning is None
  monkeypatch.delenv('JAX_PLATFORMS', raising=False)
  if jax.default_backend() == 'cpu':
    _, warning = runtime.startup_banner(gpu_visible=True)
    assert 'NVIDIA GPUs' in warning and runtime.GPU_INSTALL_COMMAND in warning
    monkeypatch.setenv('JAX_PLATFORMS', 'cpu')  # The user asked for the CPU: no warning.
    assert runtime.startup_banner(gpu_visible=True)[1] is None
  stream = io.StringIO()
  runtime.print_banner(stream=stream)
  assert stream.getvalue().startswith('devices: ')


@pytest.mark.parametrize('field,value,message', [
    ('matmul_precision', 'fp32', "config.matmul_precision='fp32': must be one of"),
    ('prng_impl', 'philox4x32', "config.prng_impl='philox4x32': must be one of"),
    ('profile_steps', '5', 'config.profile_steps='),
])
def test_experiment_checks_run_settings_before_training(field, value, message):
  from cascadeformer_jax.config import configuration  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.experiment import runner as experiment  # pylint: disable=g-import-not-at-top

  config = configuration.load_config_file(pathlib.Path(__file__).parents[2] / 'configs' / 'smoke.py',
                                          'synthetic_actions,1.0')
  assert (config.matmul_precision, config.prng_impl, config.mesh.num_devices) == ('default', 'threefry2x32', 0)
  assert config.data.device_prefetch == 2
  config[field] = value
  with pytest.raises(ValueError, match=message):
    experiment.check_config(config, configuration.model_config(config))
