"""Run folders: fitted models on disk (parameters, traces, data, metrics, ArviZ file, figures),
checkpoints of the full SVI state for resuming, reports rebuilt without refitting, and the
conserved quantities of a saved fit (:func:`discover_run`); every file checked against its
schema when read (:class:`MalformedFileError`), one writer per folder (:func:`folder_lock`)."""

from .analysis import analyze_run, comparison_figures, run_figures
from .checkpoint import Checkpoint, fingerprint, load_checkpoint, save_checkpoint
from .discovery import discover_run
from .files import is_run_folder
from .fitting import fit_in_folder
from .folder import Run, load_run, open_run, save_run
from .lock import FolderLockedError, folder_lock
from .report import find_runs, report
from .schema import MalformedFileError

__all__ = [
    "save_run",
    "load_run",
    "open_run",
    "Run",
    "fit_in_folder",
    "is_run_folder",
    "analyze_run",
    "run_figures",
    "comparison_figures",
    "report",
    "find_runs",
    "discover_run",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "fingerprint",
    "folder_lock",
    "FolderLockedError",
    "MalformedFileError",
]
