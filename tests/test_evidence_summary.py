"""``benchmarks/evidence_summary.py``: one line per record, σ² and budget of
``symmetry_evidence.py``, counting per key as the record's own table does."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import evidence_summary as es  # noqa: E402
import symmetry_evidence as se  # noqa: E402


def _row(key, model, elbo, mse, nv=1e-3, steps=100, **extra):
    return {"key": key, "model": model, "noise_variance": nv, "steps": steps,
            "neg_elbo_per_n": elbo, "nll_per_n": elbo - 1.0, "kl_per_n": 1.0,
            "test_mse": mse, **extra}


def test_a_record_counts_keys_and_takes_medians_per_budget():
    settings = {"system": "two-body-2d", "noise_variances": [1e-3], "steps": [100, 200],
                "trajectories": 200, "points": 10}
    rows = [_row(0, "hnn", 5.0, 0.2), _row(0, "symmetric", 4.0, 0.1),  # symmetry higher
            _row(1, "hnn", 1.0, 0.2), _row(1, "symmetric", 3.0, 0.3),
            _row(2, "hnn", 2.0, 0.2), _row(2, "symmetric", 2.5, 0.1),
            _row(0, "hnn", 1.0, 0.1, steps=200)]  # a budget without its pair: no line
    (line,) = es.lines("t", {"settings": settings, "rows": rows})
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells == ["t", "two-body-2d", "200 x 10 data", "0.001", "100", "1/3", "–", "2/3",
                     "2 / 3", "1 / 2"]


def test_the_largest_evaluation_s_is_counted_where_every_key_has_it():
    settings = {"system": "nbody2d3", "noise_variances": [1e-3], "steps": [100]}
    ev = {"64": {"neg_elbo_per_n": 9.0}, "256": {"neg_elbo_per_n": 0.5}}
    rows = [_row(0, "hnn", 1.0, 0.2), _row(0, "symmetric", 3.0, 0.1, eval_sym_samples=ev),
            _row(1, "hnn", 1.0, 0.2), _row(1, "symmetric", 3.0, 0.1,
                                            eval_sym_samples={"64": {"neg_elbo_per_n": 0.1}})]
    (line,) = es.lines("t", {"settings": settings, "rows": rows})
    assert "| 0/2 | 1/2 (S = 64) |" in line  # key 0 at 64: 9 > 1


def test_settings_unlike_the_benchmarks_are_named_and_the_benchmarks_are_not():
    assert es.differences({}) == "–"
    assert es.differences({"measure_scale": math.pi, "hidden": [64, 64]}) == "–"
    assert es.differences({"hidden": [128, 128], "sym_samples": 64, "measure_scale": 0.3,
                           "prior_variance": 0.015625}) == \
        "MLP 128 x 128, trained with S = 64, radius 0.3, prior variance 0.015625"
    assert es.differences({"mc_likelihood": "unbiased", "dt": 0.1}) == \
        "Δt = 0.1, unbiased Monte-Carlo likelihood"
    assert es.differences({"mc_likelihood": "plug-in"}) == "–"
    assert es.differences({"mc_likelihood": "unbiased", "mc_groups": 8}) == \
        "unbiased Monte-Carlo likelihood over 8 groups"
    # the benchmark's settings are symmetry_evidence.py's defaults
    defaults = vars(se.parser().parse_args(["--system", "two-body-2d", "--topic", "x"]))
    for name, value in es.BENCHMARK.items():
        assert defaults[name] == value, name


def test_the_summary_agrees_with_a_records_own_table():
    """A reference computation: the counts of ``records/two-body-evidence/`` as its own
    table (``symmetry_evidence.table``) printed them."""
    assert "two-body-evidence" in es.evidence_topics()
    assert "discovery" not in es.evidence_topics()
    text = es.summary(["two-body-evidence"])
    table, _, _ = es.read_record("two-body-evidence")
    for steps in (2000, 16000):
        own = next(line for line in table.splitlines() if line.startswith(f"| 0.001 | {steps} |"))
        own_higher = own.split("|")[5].strip()
        mine = next(line for line in text.splitlines() if f"| 0.001 | {steps} |" in line)
        assert mine.split("|")[6].strip() == own_higher


def test_an_unknown_topic_is_refused_by_name(capsys):
    with pytest.raises(SystemExit):
        es.main(["discovery"])
    assert "discovery" in capsys.readouterr().err
