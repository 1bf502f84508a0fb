"""Penn Action length buckets: a bounded number of padded batch lengths."""

import numpy as np
import pytest

from cascadeformer_jax import data
from tests.data import fakes


def test_padded_length():
  buckets = (64, 96, 663)
  assert [data.padded_length(n, buckets) for n in (1, 64, 65, 96, 97, 663)] == [64, 64, 96, 96, 663, 663]
  assert data.padded_length(700, buckets) == 700  # Beyond the last bucket: the clip itself.
  assert data.padded_length(65, buckets, pad_multiple=16) == 96
  assert data.padded_length(50, (), pad_multiple=16) == 64
  assert data.padded_length(50) == 50


def test_penn_batches_use_few_shapes_and_buckets_can_be_turned_off():
  source = fakes.penn_source(40, min_frames=3, max_frames=150)
  config = data.default_data_config('penn_action')
  assert config.penn.length_buckets == data.config.PENN_LENGTH_BUCKETS
  iterator = data.make_eval_iterator(config, 2, source=source, process_index=0, process_count=1)
  batches = list(iterator)
  shapes = {b['skeleton'].shape[1] for b in batches}
  assert shapes <= {64, 96, 128, 192}  # The buckets that hold clips of up to 150 frames.
  for batch in batches:
    assert batch['skeleton'].shape[1] >= batch['lengths'].max()
    for clip, length in zip(batch['skeleton'], batch['lengths']):
      assert not clip[length:].any()
  config.penn.length_buckets = ()  # The original: every batch padded to its longest clip.
  original = list(data.make_eval_iterator(config, 2, source=source, process_index=0, process_count=1))
  assert [b['skeleton'].shape[1] for b in original] == [int(b['lengths'].max()) for b in original]
  assert len({b['skeleton'].shape[1] for b in original}) > 2 * len(shapes)
  for bucketed, plain in zip(batches, original):
    np.testing.assert_array_equal(bucketed['skeleton'][:, :plain['skeleton'].shape[1]], plain['skeleton'])


@pytest.mark.parametrize('buckets', [(64, 32), (0, 64), (64, 64)])
def test_bad_buckets_are_refused(buckets):
  config = data.default_data_config('penn_action')
  config.penn.length_buckets = buckets
  with pytest.raises(ValueError, match=r'penn.length_buckets=.* must be increasing positive integers'):
    data.validate_data_config(config)


def test_penn_batch_frames_follows_the_padding_settings():
  config = data.default_data_config('penn_action')
  assert data.penn_batch_frames(config, 70) == 96
  config.penn.padding = 'fixed'
  assert data.penn_batch_frames(config, 70) == config.max_frames
  config.penn.update(padding='batch_max', length_buckets=(), pad_multiple=8)
  assert data.penn_batch_frames(config, 70) == 72
