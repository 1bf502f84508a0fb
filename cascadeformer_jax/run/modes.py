"""What each mode of a run does: the stages it trains, in order, and the evaluation it ends with.

The config checks, the experiment runner and the stage loop all read this one table.
"""

import dataclasses

from cascadeformer_jax.run import workdir

# The evaluations a mode can end with; each is also the key of its results in the run's summary.
TEST = 'test'  # the final evaluation of a classifier on the test split (results.json)
PROBE = 'probe'  # linear probe and kNN of a frozen T1 (probe.json)
FEW_SHOT = 'few_shot'  # few-shot accuracy of frozen embeddings (few_shot.json)


@dataclasses.dataclass(frozen=True)
class Mode:
  trains: tuple[str, ...]  # the stages it trains, in order
  evaluation: str | None  # TEST, PROBE, FEW_SHOT or None


MODE_TABLE = {
    'train': Mode(trains=workdir.STAGES, evaluation=TEST),
    'pretrain': Mode(trains=(workdir.PRETRAIN,), evaluation=None),
    'finetune': Mode(trains=(workdir.FINETUNE,), evaluation=TEST),
    'eval': Mode(trains=(), evaluation=TEST),
    'probe': Mode(trains=(), evaluation=PROBE),
    'few_shot': Mode(trains=(), evaluation=FEW_SHOT),
}
MODES = tuple(MODE_TABLE)
TRAINING_MODES = tuple(name for name, mode in MODE_TABLE.items() if mode.trains)
