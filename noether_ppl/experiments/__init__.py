"""The paper's experiments (and yours) as TOML files: packaged ``sho``, ``oscillators3``,
``nbody2d3`` (paper scale) and their CPU-scale twins ``*-cpu``; the loader and validator, and
the runner that fits every variant into run folders."""

from .config import (
    AnalysisSettings,
    Experiment,
    InferenceSettings,
    Split,
    Variant,
    apply_overrides,
    build_system,
    load_experiment,
    packaged_experiments,
    parse_experiment,
)
from .runner import ExperimentResult, load_reference, load_user_data, run_experiment

__all__ = [
    "Experiment",
    "Split",
    "InferenceSettings",
    "AnalysisSettings",
    "Variant",
    "load_experiment",
    "parse_experiment",
    "apply_overrides",
    "packaged_experiments",
    "build_system",
    "run_experiment",
    "ExperimentResult",
    "load_user_data",
    "load_reference",
]
