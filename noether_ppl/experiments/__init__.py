"""The paper's experiments (and yours) as TOML files: packaged ``sho``, ``oscillators3``,
``nbody2d3`` (paper scale) and their CPU-scale twins ``*-cpu``; the loader and validator, and
the runner that fits every variant into run folders."""

from ..systems.registry import build_system
from .config import (
    Experiment,
    apply_overrides,
    load_experiment,
    packaged_experiments,
    parse_experiment,
)
from .inputs import load_reference, load_user_data
from .runner import ExperimentResult, run_experiment
from .settings import AnalysisSettings, InferenceSettings, Split
from .variants import Variant

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
