"""Sample-quality metrics: FID, KID, precision/recall, density/coverage, diversity, data copying,
per-sample copy detection, and bits per pixel. See ``coursekit/metrics/README.md`` for definitions and sample counts.

Importing this package does no work: torch is imported by the submodules, torchmetrics and
scipy only inside the functions that need them. Thresholds used for grading are not here.
"""

from .copies import CopyCalibration, CopyReport, calibrate_copy_thresholds, critical_count, find_copies
from .diversity import colours_used, duplicate_rate, mean_pairwise_distance, palette_usage, pairwise_distance_ratio
from .evaluator import (
    Evaluator,
    EvaluatorConfig,
    PaletteFeatures,
    build_reference_evaluator,
    course_evaluator,
    evaluator_accuracy,
    features,
    load_evaluator,
    reference_evaluator_path,
    save_evaluator,
    train_evaluator,
)
from .fid import fid, fid_from_features, kid, kid_from_features
from .likelihood import bits_per_pixel, colour_frequency_bpp, nats_per_image_to_bpp, nats_per_pixel_to_bpp, negative_elbo_to_bpp, uniform_bpp
from .memorisation import data_copying_test, exact_copy_fraction, nearest_distances
from .precision_recall import density_coverage, knn_radii, precision_recall, prdc
from .report import evaluate_samples, format_spread, spread_over_seeds

__all__ = [
    "Evaluator",
    "EvaluatorConfig",
    "PaletteFeatures",
    "CopyCalibration",
    "CopyReport",
    "bits_per_pixel",
    "build_reference_evaluator",
    "course_evaluator",
    "calibrate_copy_thresholds",
    "colours_used",
    "critical_count",
    "data_copying_test",
    "density_coverage",
    "duplicate_rate",
    "evaluate_samples",
    "evaluator_accuracy",
    "exact_copy_fraction",
    "features",
    "fid",
    "find_copies",
    "fid_from_features",
    "format_spread",
    "kid",
    "kid_from_features",
    "knn_radii",
    "load_evaluator",
    "mean_pairwise_distance",
    "nats_per_image_to_bpp",
    "nats_per_pixel_to_bpp",
    "nearest_distances",
    "negative_elbo_to_bpp",
    "palette_usage",
    "pairwise_distance_ratio",
    "prdc",
    "precision_recall",
    "reference_evaluator_path",
    "save_evaluator",
    "spread_over_seeds",
    "train_evaluator",
    "colour_frequency_bpp",
    "uniform_bpp",
]
