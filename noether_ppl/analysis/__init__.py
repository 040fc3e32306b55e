"""Analysis of fitted models: evaluation (one-step errors, ELBO terms, predictive metrics,
rollouts, whether the likelihood mean resolves the data's Δt), the learned symmetry (SVD and
parallelness, Sec. 5.1), tables in the paper's layout, figures, and the Lie-derivative toolkit
(``analysis.lie``: discover, enforce, promote)."""

from . import lie, plots, tables
from .auto import (
    DEFAULT_START_DIRECTIONS,
    DEFAULT_SYMMETRISED_HNN,
    START_DIRECTIONS,
    AutoFit,
    fit_auto,
    select_from_fits,
)
from .evaluate import Evaluation, evaluate
from .lie import (
    DEFAULT_DISCOVER_THRESHOLD,
    Discovery,
    PromotionReport,
    QuadraticBasis,
    basis_lie_derivatives,
    discover,
    enforce,
    invariant_subspace,
    lie_derivatives,
    promote,
    quadratic_basis,
    spectral_gaps,
)
from .predictive import PredictiveMetrics, elbo_terms, one_step_mse, predictive_metrics
from .resolution import (
    DEFAULT_MAX_NOISE_RATIO,
    DEFAULT_REFERENCE,
    MeanResolution,
    mean_error,
    mean_resolution,
)
from .rollouts import RolloutMetrics, model_conserved_quantities, rollout_metrics
from .symmetry import (
    DEFAULT_THRESHOLD,
    SymmetryReport,
    coordinate_names,
    describe_generator,
    describe_quadratic,
    parallelness,
    subspace_cosines,
    symmetry_report,
)
from .tables import format_table

__all__ = [
    # the recommended pipeline
    "AutoFit", "fit_auto", "select_from_fits", "START_DIRECTIONS", "DEFAULT_START_DIRECTIONS",
    "DEFAULT_SYMMETRISED_HNN",
    # evaluation
    "Evaluation", "PredictiveMetrics", "RolloutMetrics", "elbo_terms", "evaluate",
    "model_conserved_quantities", "one_step_mse", "predictive_metrics", "rollout_metrics",
    # the likelihood mean against the data's Δt
    "DEFAULT_MAX_NOISE_RATIO", "DEFAULT_REFERENCE", "MeanResolution", "mean_error",
    "mean_resolution",
    # learned symmetry
    "DEFAULT_THRESHOLD", "SymmetryReport", "coordinate_names", "describe_generator",
    "describe_quadratic", "parallelness", "subspace_cosines", "symmetry_report",
    # tables and figures
    "format_table", "plots", "tables",
    # Lie-derivative toolkit
    "lie", "DEFAULT_DISCOVER_THRESHOLD", "Discovery", "PromotionReport", "QuadraticBasis",
    "basis_lie_derivatives", "discover", "enforce", "invariant_subspace", "lie_derivatives",
    "promote", "quadratic_basis", "spectral_gaps",
]
