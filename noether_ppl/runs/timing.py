"""Where the time of a run goes: seconds per phase, recorded in ``run.json`` and printed.

A :class:`PhaseTimer` adds up wall-clock seconds (``time.perf_counter``) per named phase;
:func:`split_line` prints them as one line. The record of one run (``run.json``'s
``"timing"``, see :func:`record_run_timing`)::

    {"fit_s": 160.2,            # the fit, compilation and checkpoints included
     "analysis_s": 41.0,        # evaluation, rollouts, ArviZ and figures (the sum of below)
     "io_s": 0.9,               # reading the run folder, writing posterior.nc, metrics.json
     "analysis": {"metrics_s": .., "rollouts_s": .., "arviz_s": .., "figures_s": ..}}

An experiment (``experiment.json``) and the demo (``metrics.json``) record the same split over
all their runs, with ``simulate_s`` (the data) and ``wall_s`` (the whole command); the phases
never overlap, so their sum is at most ``wall_s``.
"""

from __future__ import annotations

import contextlib
import os
import time

__all__ = ["PhaseTimer", "ANALYSIS_PHASES", "analysis_total", "summary", "split_line",
           "record_run_timing"]

ANALYSIS_PHASES = ("metrics_s", "rollouts_s", "arviz_s", "figures_s")
"""The parts of ``analysis_s``: predictive and ELBO metrics (and the symmetry report), rollouts,
the ArviZ draws (with the PSIS diagnostics), figures."""


class PhaseTimer:
    """Seconds per phase: ``with timer("fit_s"): ...`` adds the block's wall-clock seconds to
    ``timer.seconds["fit_s"]``. Phases must not be nested (their sum is then at most the time
    since the timer started, :attr:`elapsed`)."""

    def __init__(self):
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - t)

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + max(0.0, float(seconds))

    def merge(self, seconds: dict) -> None:
        """Add ``{phase: seconds}`` (e.g. an analysis' split) to these."""
        for phase, s in seconds.items():
            self.add(phase, s)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def get(self, phase: str) -> float:
        return self.seconds.get(phase, 0.0)


def analysis_total(split: dict) -> float:
    """``analysis_s``: the sum of the :data:`ANALYSIS_PHASES` in ``split``."""
    return float(sum(split.get(p, 0.0) for p in ANALYSIS_PHASES))


def summary(timer: PhaseTimer, *, wall_s: float | None = None) -> dict:
    """The record of a command (an experiment or the demo): ``simulate_s``, ``fit_s``,
    ``analysis_s`` (and its parts under ``analysis``), ``io_s`` and ``wall_s``."""
    split = {p: round(timer.get(p), 3) for p in ANALYSIS_PHASES}
    return {
        "simulate_s": round(timer.get("simulate_s"), 3),
        "fit_s": round(timer.get("fit_s"), 3),
        "analysis_s": round(analysis_total(split), 3),
        "io_s": round(timer.get("io_s"), 3),
        "wall_s": round(timer.elapsed if wall_s is None else wall_s, 3),
        "analysis": split,
    }


def split_line(timing: dict) -> str:
    """One line: ``Time 212 s: fits 150 s, outside the fits 62 s (data 1 s, analysis 58 s
    [metrics 20, rollouts 3, ArviZ 25, figures 10], I/O 2 s, other 1 s).``"""
    fit, wall = timing.get("fit_s", 0.0), timing.get("wall_s", 0.0)
    parts = timing.get("analysis", {})
    other = max(0.0, wall - fit - timing.get("simulate_s", 0.0) - timing.get("analysis_s", 0.0)
                - timing.get("io_s", 0.0))
    inner = ", ".join(f"{name} {parts.get(key, 0.0):.0f}" for name, key in (
        ("metrics", "metrics_s"), ("rollouts", "rollouts_s"), ("ArviZ", "arviz_s"),
        ("figures", "figures_s")))
    return (f"Time {wall:.0f} s: fits {fit:.0f} s, outside the fits {wall - fit:.0f} s "
            f"(data {timing.get('simulate_s', 0.0):.0f} s, analysis "
            f"{timing.get('analysis_s', 0.0):.0f} s [{inner}], I/O {timing.get('io_s', 0.0):.0f}"
            f" s, other {other:.0f} s).")


def record_run_timing(folder, *, fit_s: float | None = None, analysis: dict | None = None,
                      io_s: float = 0.0) -> dict:
    """Write the split of one run into its ``run.json`` (``"timing"``, atomically) and return
    it. ``fit_s``: the fit's seconds (None keeps the recorded ones, e.g. a complete run kept on
    resume and analysed now); ``analysis``: the split :func:`~noether_ppl.runs.analyze_run`
    returned (``metrics["timing"]``: the :data:`ANALYSIS_PHASES` and ``io_s``), None keeps the
    recorded analysis; ``io_s``: more seconds of reading and writing the folder."""
    from .files import RUN_FILE, read_run_info, write_json

    info = read_run_info(folder)
    old = info.get("timing") or {}
    timing = {}
    fit = old.get("fit_s") if fit_s is None else round(float(fit_s), 3)
    if fit is not None:  # (a run saved without a fit of its own, e.g. a selection, has none)
        timing["fit_s"] = fit
    if analysis is None:
        split = dict(old.get("analysis", {}))
        io = old.get("io_s", 0.0) + io_s
    else:
        split = {p: round(float(analysis.get(p, 0.0)), 3) for p in ANALYSIS_PHASES}
        io = float(analysis.get("io_s", 0.0)) + io_s
    timing.update({"analysis_s": round(analysis_total(split), 3), "io_s": round(io, 3),
                   "analysis": split})
    info["timing"] = timing
    write_json(os.path.join(os.fspath(folder), RUN_FILE), info)
    return timing
