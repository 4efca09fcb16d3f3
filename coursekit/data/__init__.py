"""Palette image data sets: ``load_dataset('sprites' | 'digits' | 'pokemon' | path)``.

Heavy dependencies (scikit-learn, Pillow) are imported only by the functions that need them.
"""

from .course import (
    DatasetMismatch,
    check_measured_on,
    course_dataset,
    course_dataset_spec,
    dataset_fingerprint,
    set_course_dataset,
)
from .convert import from_sequence, indices_to_rgb, one_hot, to_sequence
from .dataset import PaletteDataset
from .errors import DataError
from .registry import DATASETS, load_dataset

__all__ = [
    "DATASETS",
    "DataError",
    "DatasetMismatch",
    "check_measured_on",
    "course_dataset",
    "course_dataset_spec",
    "dataset_fingerprint",
    "set_course_dataset",
    "PaletteDataset",
    "from_sequence",
    "indices_to_rgb",
    "load_dataset",
    "one_hot",
    "to_sequence",
]
