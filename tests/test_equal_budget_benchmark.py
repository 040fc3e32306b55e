"""``benchmarks/equal_budget.py``: the continuation steps behind a selection recorded before
``Selection.continued_steps`` existed, counted from its steps as ``select_conserved`` takes
them (the cases of ``test_select_by_conservation_keeps_exactly_the_conserved_directions`` in
``tests/test_select.py``, which checks the recorded count on real selections)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from equal_budget import continued_steps  # noqa: E402

REMOVED = {"reason": "not conserved by the fitted H", "kept_removal": True}


def _selection(steps, start=1, criterion="conserved"):
    return {"criterion": criterion, "start_dimension": start, "steps": steps}


@pytest.mark.parametrize("steps, start, expected", [
    ([], 1, 3),  # one settling continuation, the rung then stops: everything left is conserved
    ([REMOVED], 1, 6),  # settling, then the removal; nothing left, so no further rung
    ([{"reason": "spectrum", "kept": "refit"}], 1, 6),  # settling, then the refit
    ([REMOVED, {"reason": "spectrum", "kept": "refit"}], 1, 9),
    ([REMOVED, {"reason": "spectrum", "kept": "before"}], 1, 6),  # the refit not kept
    ([REMOVED, REMOVED, {"reason": "spectrum", "kept": "refit"}], 4, 18),  # 2 removals of 4
])
def test_continued_steps_are_counted_from_a_conserved_selection(steps, start, expected):
    assert continued_steps(_selection(steps, start), 3) == expected


def test_a_recorded_count_is_taken_and_other_criteria_are_refused():
    assert continued_steps({**_selection([REMOVED]), "continued_steps": 11}, 3) == 11
    with pytest.raises(ValueError, match="criterion 'conserved'"):
        continued_steps(_selection([], criterion="elbo"), 3)
