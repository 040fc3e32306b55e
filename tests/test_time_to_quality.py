"""``benchmarks/time_to_quality.py``'s paired speed-ups: plain's time over the candidate's, only
for runs of the same seed and fit key where both met the targets."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import time_to_quality  # noqa: E402


def _run(seconds):
    return {"reached": None if seconds is None else {"train_s": seconds, "step": 100}}


def test_paired_speedups_skip_pairs_with_a_miss():
    plain = [_run(40.0), _run(None), _run(45.0), _run(30.0)]
    cand = [_run(5.0), _run(4.0), _run(None), _run(10.0)]
    assert time_to_quality.paired_speedups(plain, cand) == pytest.approx([8.0, 3.0])
    assert time_to_quality.paired_speedups(plain, [_run(None)] * 4) == []
    with pytest.raises(ValueError, match="as many"):
        time_to_quality.paired_speedups(plain, cand[:3])


def test_every_candidate_setting_reaches_the_model_or_the_fit():
    """A candidate's settings are ModelSpec fields or fit settings (nothing dropped silently)."""
    import dataclasses

    from noether_ppl.inference import FitSettings
    from noether_ppl.models import ModelSpec

    spec_fields = {f.name for f in dataclasses.fields(ModelSpec)}
    fit_fields = {f.name for f in dataclasses.fields(FitSettings)}
    assert set(time_to_quality.FIT_OVERRIDES) - {"budget_fraction"} <= fit_fields
    for name, settings in time_to_quality.CANDIDATES.items():
        unknown = set(settings) - spec_fields - set(time_to_quality.FIT_OVERRIDES)
        assert not unknown, (name, unknown)


def test_fractional_symmetry_samples_divide_every_data_set():
    """A candidate's S given as a fraction is a known one and leaves a whole S >= 2."""
    for name, settings in time_to_quality.CANDIDATES.items():
        frac = settings.get("sym_samples")
        if isinstance(frac, str):
            assert frac in time_to_quality.SYM_FRACTIONS, (name, frac)
            for ds in time_to_quality.DATASETS.values():
                s = ds["spec"]["sym_samples"]
                assert s % time_to_quality.SYM_FRACTIONS[frac] == 0, (name, s)
                assert s // time_to_quality.SYM_FRACTIONS[frac] >= 2, (name, s)


def test_step_times_and_misses_read_each_runs_end():
    targets = {"test_mse": 1.0, "neg_elbo_per_n": 10.0}

    def run(mse, elbo, reached=False):
        return {"trace": [{"step": 500, "train_s": 2.0, "test_mse": mse, "neg_elbo_per_n": elbo}],
                "reached": {"step": 500, "train_s": 2.0} if reached else None}

    runs = [run(2.0, 5.0), run(0.5, 12.0), run(3.0, 11.0), run(0.5, 5.0, reached=True),
            run(float("nan"), 5.0)]
    assert time_to_quality.step_times(runs) == pytest.approx([4.0] * 5)
    assert time_to_quality.miss_counts([(targets, r) for r in runs]) == {
        "test_mse": 2, "neg_elbo_per_n": 1, "both": 1}
