"""Hénon–Heiles: which model does the evidence prefer, the plain HNN or the U(2)-symmetric one?

    python benchmarks/henon_heiles_evidence.py
    python benchmarks/henon_heiles_evidence.py --energy-fraction 0.99 --noise-variances 1e-3 \
        --topic henon-heiles-evidence-shell

``symmetry_evidence.py`` for ``--system henon-heiles`` (its symmetric model fixes U(2), the
algebra that Hénon–Heiles' quadratic part conserves and its cubic part breaks), with the topic
``henon-heiles-evidence`` unless ``--topic`` is given; every other option is
``symmetry_evidence.py``'s. The discovery benchmark's razor reads U(2)'s four directions on
Hénon–Heiles, whose true dimension is 0 (``records/discovery/``): is that the razor's criterion
speaking or an unconverged comparison?
"""

from __future__ import annotations

import sys

import symmetry_evidence


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    defaults = ["--system", "henon-heiles"]
    if not any(a == "--topic" or a.startswith("--topic=") for a in argv):
        defaults += ["--topic", "henon-heiles-evidence"]
    return symmetry_evidence.main(defaults + argv)


if __name__ == "__main__":
    sys.exit(main())
