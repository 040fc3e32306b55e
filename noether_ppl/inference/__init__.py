"""Inference for Noether's razor: the matrix-normal guide (App. D.1), the ELBO with the
closed-form prior variance (App. D.3–D.4), ``fit`` on top of NumPyro's SVI (and
``fit_restarts``, the best of several by ELBO, and ``refit_posterior``, the posterior fitted
again at the learned conserved quantities), and the ArviZ
conversion with VI diagnostics."""

from .arviz import load_arviz, save_arviz, summary, to_arviz
from .conservation import (
    conservation_eigen,
    conservation_residuals,
    conservation_spectrum,
    principal_generators,
    spectrum_cuts,
    spectrum_dimension,
)
from .elbo import MatrixNormalELBO
from .evidence import ElboEstimate, elbo_difference, elbo_estimate
from .fit import DivergenceError, RunawayError, fit
from .guide import AutoMatrixNormal, init_to_lecun
from .optim import make_optimizer
from .psis import VIDiagnostics, psis_khat, vi_diagnostics
from .refit import held_conserved, refit_posterior
from .restarts import final_neg_elbo, fit_restarts
from .result import FitResult
from .select import Selection, select_conserved
from .settings import FitSettings

__all__ = [
    "ElboEstimate",
    "elbo_estimate",
    "elbo_difference",
    "Selection",
    "select_conserved",
    "conservation_residuals",
    "conservation_eigen",
    "conservation_spectrum",
    "spectrum_cuts",
    "spectrum_dimension",
    "principal_generators",
    "AutoMatrixNormal",
    "init_to_lecun",
    "MatrixNormalELBO",
    "fit",
    "FitSettings",
    "make_optimizer",
    "fit_restarts",
    "refit_posterior",
    "held_conserved",
    "final_neg_elbo",
    "DivergenceError",
    "RunawayError",
    "FitResult",
    "to_arviz",
    "VIDiagnostics",
    "vi_diagnostics",
    "psis_khat",
    "summary",
    "save_arviz",
    "load_arviz",
]
