"""noether_ppl.analysis (exports are filled in as modules land)."""

# --- Lie-derivative toolkit (seed 000): discover, enforce, promote -------------------------
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
)

__all__ = [*globals().get("__all__", []), "DEFAULT_DISCOVER_THRESHOLD", "Discovery",
           "PromotionReport", "QuadraticBasis", "basis_lie_derivatives", "discover", "enforce",
           "invariant_subspace", "lie_derivatives", "promote", "quadratic_basis"]

# --- Evaluation, symmetry report, tables and figures (issue 4) -------------------------------
from . import plots, tables
from .evaluate import (
    Evaluation,
    PredictiveMetrics,
    RolloutMetrics,
    elbo_terms,
    evaluate,
    model_conserved_quantities,
    one_step_mse,
    predictive_metrics,
    rollout_metrics,
)
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

__all__ = [*globals().get("__all__", []), "plots", "tables", "Evaluation", "PredictiveMetrics",
           "RolloutMetrics", "elbo_terms", "evaluate", "model_conserved_quantities",
           "one_step_mse", "predictive_metrics", "rollout_metrics", "DEFAULT_THRESHOLD",
           "SymmetryReport", "coordinate_names", "describe_generator", "describe_quadratic",
           "parallelness", "subspace_cosines", "symmetry_report", "format_table"]
