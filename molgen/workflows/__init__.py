"""End-to-end operations (train a generator on a data set, sample to a file)
that the CLI, tutorials and benchmarks call. Above ``train``, below ``cli``."""

from molgen.workflows.sampling import SampleStats, resolve_model_dir, sample_to_file
from molgen.workflows.training import (
    DataConfig,
    RunConfig,
    RunSummary,
    prepare_data,
    run_training,
)

__all__ = [
    "DataConfig",
    "RunConfig",
    "RunSummary",
    "SampleStats",
    "prepare_data",
    "resolve_model_dir",
    "run_training",
    "sample_to_file",
]
