"""Build/read helpers shared by the builder tests."""

import os
import pathlib
from typing import Any

import numpy as np
import pytest
import tensorflow_datasets as tfds

import data_builders


def build(name: str, data_dir: pathlib.Path, manual_dir: pathlib.Path | None = None, config: Any = None,
          **builder_kwargs: Any) -> tfds.core.GeneratorBasedBuilder:
  tfds.disable_progress_bar()
  return data_builders.build_dataset(name, data_dir, manual_dir=manual_dir, config=config, verbose=False,
                                     **builder_kwargs)


def read_split(builder: tfds.core.GeneratorBasedBuilder, split: str) -> list[dict[str, Any]]:
  source = builder.as_data_source(split=split)
  return [source[i] for i in range(len(source))]


def by_name(examples: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
  return {example[key].decode(): example for example in examples}


def assert_split_disjoint(builder: tfds.core.GeneratorBasedBuilder, key: str) -> None:
  """No sample name and no identical example content is shared between train and test."""
  train, test = read_split(builder, 'train'), read_split(builder, 'test')
  assert not set(by_name(train, key)) & set(by_name(test, key))
  train_skeletons = {np.asarray(e['skeleton']).tobytes() for e in train}
  assert not train_skeletons & {np.asarray(e['skeleton']).tobytes() for e in test}


def assert_nothing_built(data_dir: pathlib.Path, name: str, config: str | None = None) -> None:
  """After a failed build: no data files, nothing a data source or builder_from_directory would accept."""
  leftovers = [os.path.join(root, f) for root, _, files in os.walk(data_dir) for f in files]
  assert not leftovers, leftovers
  with pytest.raises(data_builders.DatasetNotBuiltError, match='python -m data_builders.build'):
    data_builders.load_data_source(name, 'train', data_dir, config=config)
  version_dir = data_builders.get_builder(name, data_dir, config).data_path
  with pytest.raises(OSError, match='dataset_info.json'):  # tfds' DatasetInfoFileError
    tfds.builder_from_directory(str(version_dir))
