"""Input pipelines: per-dataset transforms (`transforms`), example checks (`examples`), grain batching."""

from cascadeformer_jax.data.config import DATASETS
from cascadeformer_jax.data.config import FOLDER
from cascadeformer_jax.data.config import default_data_config
from cascadeformer_jax.data.config import joint_parents
from cascadeformer_jax.data.config import model_input_shape
from cascadeformer_jax.data.config import padded_length
from cascadeformer_jax.data.config import penn_batch_frames
from cascadeformer_jax.data.config import resolve_data_dir
from cascadeformer_jax.data.config import stored_layout
from cascadeformer_jax.data.config import two_person_labels
from cascadeformer_jax.data.config import validate_data_config
from cascadeformer_jax.data.examples import BadExampleError
from cascadeformer_jax.data.examples import process_example
from cascadeformer_jax.data.pipeline import DataIterator
from cascadeformer_jax.data.pipeline import make_eval_iterator
from cascadeformer_jax.data.pipeline import make_train_iterator
from cascadeformer_jax.data.pipeline import num_examples
from cascadeformer_jax.data.pipeline import open_data_source
