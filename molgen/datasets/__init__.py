"""Named data sets and readers. Importing registers the catalog."""

from molgen.datasets import catalog as _catalog  # noqa: F401  (registers data sets)
from molgen.datasets.loading import LoadedTexts, load_texts, resolve_source
from molgen.datasets.readers import Record, read_records
from molgen.datasets.registry import DatasetSpec, register_dataset, resolve_dataset_file

__all__ = [
    "DatasetSpec",
    "LoadedTexts",
    "Record",
    "load_texts",
    "read_records",
    "register_dataset",
    "resolve_dataset_file",
    "resolve_source",
]
