"""The few-shot evaluation of a run: frozen embeddings of a model (possibly trained on another dataset and joint
layout) classify the test split from a few support clips per class of the training split (evaluate/few_shot.py),
into few_shot.json, a report.md section and the metrics file."""

import json
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from cascadeformer_jax import data as data_lib
from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.checkpoints import model_sources
from cascadeformer_jax.config import schema
from cascadeformer_jax.data import preprocessing as preprocessing_lib
from cascadeformer_jax.data import layouts
from cascadeformer_jax.data import sources
from cascadeformer_jax.data.config import STORED_LAYOUTS
from cascadeformer_jax.evaluate import evaluators
from cascadeformer_jax.evaluate import few_shot as few_shot_lib
from cascadeformer_jax.evaluate import report
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.run import partitioning
from cascadeformer_jax.run import workdir as workdir_lib


class FewShotSetupError(RuntimeError):
  """The few-shot evaluation cannot start: no model, or a model whose inputs or embeddings do not fit the request."""


def model_joint_layout(model_config: ModelConfig) -> layouts.Layout | None:
  """The named joint layout a model of a built-in family reads (None for other joint counts, e.g. folder data)."""
  name = STORED_LAYOUTS.get(model_config.layout)
  layout = layouts.get_layout(name) if name else None
  return layout if layout is not None and layout.num_joints == model_config.num_joints else None


def clip_map(data_config: ml_collections.ConfigDict, model_config: ModelConfig,
             mapping: str = '') -> evaluators.ClipMap | None:
  """How the dataset's preprocessed clips reach a model trained on another joint layout (None: they fit).

  The pipeline gives clips in the dataset's model order (N-UCLA: SkateFormer partition order); they are put back
  into the stored joint order, mapped with `layouts.convert` (the anatomical mapping, or `mapping`, e.g.
  'original_partition_order' for the original N-UCLA -> NTU transfer) and put into the model's order.
  """
  _, joints, coords = data_lib.model_input_shape(data_config)
  if (joints, coords) == (model_config.num_joints, model_config.coords) and not mapping:
    return None
  where = (f'the model reads {model_config.num_joints} joints x {model_config.coords} channels per frame but '
           f'{data_config.name} gives {joints} x {coords}')
  if coords != model_config.coords or data_config.representation != 'joint':
    raise FewShotSetupError(f'{where}; only joint coordinates with the same number of channels can be mapped '
                            'between joint layouts')
  target = model_joint_layout(model_config)
  if target is None:
    raise FewShotSetupError(f'{where}; the model\'s joint layout ({model_config.layout} family) is not a named one, '
                            'so its clips cannot be mapped')
  source = data_lib.stored_layout(data_config)
  try:
    layouts.mapping_matrix(source, target, mapping or None)
  except ValueError as e:
    raise FewShotSetupError(f'config.few_shot.mapping: {e}') from None
  partition = np.asarray(layouts.NUCLA_PARTITION_ORDER)
  to_stored = np.argsort(partition) if data_config.layout == 'nucla' else None
  to_model = partition if model_config.layout == 'nucla' else None

  def mapped(clips: np.ndarray) -> np.ndarray:
    stored = clips if to_stored is None else clips[..., to_stored, :]
    converted = layouts.convert(stored, source, target, mapping=mapping or None)
    return converted if to_model is None else converted[..., to_model, :]

  return mapped


def evaluate_few_shot(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, model_source: str,
                      writer: report.MetricWriter, workdir: workdir_lib.Workdir) -> dict[str, Any]:
  """Few-shot accuracy of frozen embeddings; writes few_shot.json and a report.md section.

  Args:
    config: the experiment config (its data, few_shot and eval settings).
    mesh: the device mesh the embeddings are computed on.
    model_source: the model (a model dir, a work dir or an hf: folder; a classifier, or a pretrained T1).
    writer: the run's metrics file.
    workdir: where few_shot.json and report.md go (written by process 0).

  Raises:
    FewShotSetupError: there is no model at `model_source`, its joints cannot be mapped from the dataset's, or
      the embedding asked for is not one a pretrained model has.
  """
  started = time.time()
  settings = config.few_shot
  protocol = sources.one_shot_protocol(config.data) if settings.protocol == 'ntu120_one_shot' else None
  data_config = config.data
  if protocol is not None:
    # The protocol reads every clip of every class in both stored splits.
    data_config = data_config.copy_and_resolve_references()
    data_config.update(class_subset='', holdout_fraction=0.0, label_fraction=1.0)
    splits = (data_config.train_split, data_config.eval_split)
    stored_names = {split: sources.sample_ids(data_config, split, range(len(sources.open_split(data_config, split))))
                    for split in splits}
    few_shot_lib.check_exemplars(stored_names[splits[0]] + stored_names[splits[1]], protocol)
  try:
    loaded = model_sources.load(model_source, (checkpoint_io.CLASSIFIER, checkpoint_io.PRETRAINED),
                                any_pretraining_head=True)
  except (FileNotFoundError, checkpoint_io.ModelDirError) as e:
    raise FewShotSetupError(f'few_shot needs a model: {e}; pass --config.init_from=<model dir | work dir | '
                            'hf:folder> or train this work dir first') from None
  try:  # Another dataset by design: only what the model itself is fed has to agree.
    preprocessing_lib.check_agrees(loaded.preprocessing, config.data, loaded.location, schema.TRANSFER_INPUT_FIELDS)
  except preprocessing_lib.PreprocessingMismatchError as e:
    raise FewShotSetupError(str(e)) from None
  mapping = clip_map(data_config, loaded.config, settings.get('mapping', ''))
  if loaded.kind == checkpoint_io.CLASSIFIER:
    extractor = evaluators.EmbeddingExtractor(loaded.config, data_config, config.eval.batch_size, mesh,
                                              settings.embedding, mapping)
    params = loaded.params
  elif settings.embedding in ('pooled', 't1_features'):
    extractor = evaluators.FeatureExtractor(loaded.config, data_config, config.eval.batch_size, mesh, mapping)
    params = loaded.params['t1']
  else:
    raise FewShotSetupError(f'{loaded.location} is a pretrained model (T1 only): config.few_shot.embedding must be '
                            f"'pooled' (or 't1_features'), not {settings.embedding!r}")
  params = partitioning.replicate(params, mesh)
  support = extractor.run(params, data_config.train_split)
  queries = extractor.run(params, data_config.eval_split)
  results: dict[str, Any] = {'model': loaded.location, 'model_kind': loaded.kind, 'dataset': data_config.name,
                             'embedding': settings.embedding, 'protocol': settings.protocol,
                             'joint_mapping': ('none' if mapping is None else settings.get('mapping', '')
                                               or 'anatomical')}
  if protocol is not None:
    # The protocol draws on the whole dataset: clips of both splits, the exemplars wherever they are.
    names = ([stored_names[splits[0]][i] for i in support['index']]
             + [stored_names[splits[1]][i] for i in queries['index']])
    embeddings = np.concatenate([support['features'], queries['features']])
    labels = np.concatenate([support['label'], queries['label']])
    shots = few_shot_lib.evaluate_one_shot_protocol(embeddings, labels, names, protocol)
    results.update(num_queries=shots['1']['num_queries'], num_classes=shots['1']['num_classes'], shots=shots)
  else:
    shots = few_shot_lib.evaluate(support['features'], support['label'], queries['features'], queries['label'],
                                  shots=settings.shots, runs=settings.runs, seed=settings.seed,
                                  replace=settings.replace, procedure=settings.procedure)
    results.update(procedure=settings.procedure, support_split=data_config.train_split,
                   query_split=data_config.eval_split, runs=settings.runs,
                   seed=(few_shot_lib.ORIGINAL_SEED if settings.procedure == 'original_transfer_ucla'
                         else settings.seed),
                   num_support=int(len(support['label'])), num_queries=int(len(queries['label'])),
                   num_classes=int(len(set(support['label'].tolist()))), shots=shots)
  results['seconds'] = round(time.time() - started, 2)
  writer.write('few_shot', 0, {f'{k}_shot': v['mean'] for k, v in shots.items()}, split=data_config.eval_split)
  if jax.process_index() == 0:
    workdir.few_shot_file.write_text(json.dumps(results, indent=2) + '\n')
    report.replace_section(workdir.report_file, 'Few-shot', few_shot_lib.markdown_section(results))
  return results
