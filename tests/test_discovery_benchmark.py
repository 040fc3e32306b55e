"""``benchmarks/discovery.py``: its default run covers every registered system, and the systems
that need more steps get them (and a selection scaled alike)."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import discovery  # noqa: E402

from noether_ppl import systems  # noqa: E402


def test_the_default_run_covers_every_registered_system_once():
    assert sorted(discovery.ORDER) == sorted({**systems.PAPER, **systems.SUITE})
    assert set(discovery.SYSTEM_STEPS) <= set(discovery.ORDER)


def test_steps_of_a_system_is_the_larger_budget_with_the_selection_scaled_alike():
    args = argparse.Namespace(steps=2000, select_steps=500)
    assert discovery.steps_of("sho", args) == (2000, 500)
    assert discovery.steps_of("henon-heiles-escape", args) == (16000, 4000)
    more = argparse.Namespace(steps=32000, select_steps=1000)
    assert discovery.steps_of("henon-heiles-escape", more) == (32000, 1000)
