"""Every record of ``symmetry_evidence.py`` in one table (no fitting): under which settings does
the evidence prefer the fixed symmetry over the plain HNN?

``python evidence_summary.py TOPIC ...`` prints one line per record, σ² and number of steps:
the system; the record's settings that differ from the discovery benchmark's (:data:`BENCHMARK`:
50 trajectories x 10 steps, MLP 64 x 64, S = 16, a ball of symmetry times of radius π,
App. D.3–D.4's prior variance, Adam 3e-3 on batches of 10); on how many keys the symmetric
model's ELBO is higher than the HNN's, as trained (S = the record's) and, where the record
scored its fits again with more symmetry samples (``--eval-sym-samples``), with the largest S;
on how many keys its test MSE is lower; and the medians over the keys of both models' −ELBO/N
and NLL/N. Without topics: every record under ``records/`` that ``symmetry_evidence.py`` or
``henon_heiles_evidence.py`` wrote, in name order; ``--systems NAME ...`` keeps those systems.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys

from discovery import INTEGRATOR, SUBSTEPS, likelihood_words
from record import RECORDS, read_record

BENCHMARK = {"trajectories": 50, "points": 10, "hidden": [64, 64], "sym_samples": 16,
             "measure_scale": math.pi, "prior_variance": "optimal", "lr": 3e-3,
             "batch_size": 10, "energy_fraction": None, "dt": None, "integrator": INTEGRATOR,
             "substeps": SUBSTEPS, "mc_likelihood": "plug-in", "mc_groups": 2}
"""The discovery benchmark's settings, which ``symmetry_evidence.py`` uses unless told
otherwise; a record written before a setting existed ran at this value."""

SCRIPTS = ("symmetry_evidence.py", "henon_heiles_evidence.py")


def evidence_topics() -> list[str]:
    """The records under ``records/`` whose command runs one of :data:`SCRIPTS`."""
    out = []
    for folder in sorted(p for p in RECORDS.iterdir() if (p / "record.json").is_file()):
        command = json.loads((folder / "record.json").read_text()).get("command", "")
        if any(s in command for s in SCRIPTS):
            out.append(folder.name)
    return out


def differences(settings: dict) -> str:
    """The settings of a record that differ from :data:`BENCHMARK`, in words ("–": none)."""
    s = {**BENCHMARK, **settings}
    words = []
    if (s["trajectories"], s["points"]) != (BENCHMARK["trajectories"], BENCHMARK["points"]):
        words.append(f"{s['trajectories']} x {s['points']} data")
    if list(s["hidden"]) != BENCHMARK["hidden"]:
        words.append("MLP " + " x ".join(map(str, s["hidden"])))
    if s["sym_samples"] != BENCHMARK["sym_samples"]:
        words.append(f"trained with S = {s['sym_samples']}")
    if not math.isclose(s["measure_scale"], BENCHMARK["measure_scale"]):
        words.append(f"radius {s['measure_scale']:g}")
    if s["prior_variance"] != BENCHMARK["prior_variance"]:
        words.append(f"prior variance {s['prior_variance']:g}")
    if s["lr"] != BENCHMARK["lr"] or s["batch_size"] != BENCHMARK["batch_size"]:
        words.append(f"lr {s['lr']:g}, batch {s['batch_size']}")
    if (s["integrator"], s["substeps"]) != (BENCHMARK["integrator"], BENCHMARK["substeps"]):
        words.append(f"{s['substeps']} x {s['integrator']}")
    if s["dt"] is not None:
        words.append(f"Δt = {s['dt']:g}")
    if likelihood := likelihood_words(s):
        words.append(likelihood)
    if s["energy_fraction"] is not None:
        words.append(f"energy shell {s['energy_fraction']:g} x 1/6")
    return ", ".join(words) or "–"


def _nv(v) -> str:
    return v if isinstance(v, str) else f"{v:g}"


def _median(values) -> str:
    return f"{statistics.median(values):.3g}"


def lines(topic: str, metrics: dict) -> list[str]:
    """The table's lines of one record: one per σ² and number of steps, over the keys on
    which both models were fitted."""
    settings, rows = metrics["settings"], metrics["rows"]
    system = settings.get("system", "henon-heiles")  # henon_heiles_evidence.py's records
    out = []
    for nv in settings["noise_variances"]:
        for steps in settings["steps"]:
            by_key = {}
            for r in rows:
                if (r["noise_variance"], r["steps"]) == (nv, steps):
                    by_key.setdefault(r["key"], {})[r["model"]] = r
            pairs = [(m["hnn"], m["symmetric"]) for _, m in sorted(by_key.items())
                     if {"hnn", "symmetric"} <= m.keys()]
            if not pairs:
                continue
            n = len(pairs)
            higher = sum(u["neg_elbo_per_n"] < h["neg_elbo_per_n"] for h, u in pairs)
            evals = [u.get("eval_sym_samples") or {} for _, u in pairs]
            common = set.intersection(*(set(e) for e in evals))
            if common:
                S = max(common, key=int)
                above = sum(e[S]["neg_elbo_per_n"] < h["neg_elbo_per_n"]
                            for (h, _), e in zip(pairs, evals, strict=True))
                at_S = f"{above}/{n} (S = {S})"
            else:
                at_S = "–"
            lower = sum(u["test_mse"] < h["test_mse"] for h, u in pairs)
            out.append(
                f"| {topic} | {system} | {differences(settings)} | {_nv(nv)} | {steps} | "
                f"{higher}/{n} | {at_S} | {lower}/{n} | "
                f"{_median([h['neg_elbo_per_n'] for h, _ in pairs])} / "
                f"{_median([u['neg_elbo_per_n'] for _, u in pairs])} | "
                f"{_median([h['nll_per_n'] for h, _ in pairs])} / "
                f"{_median([u['nll_per_n'] for _, u in pairs])} |")
    return out


HEADER = ["| record | system | settings unlike the benchmark's | σ² | steps | symmetry ELBO "
          "higher | … with more samples | symmetry test MSE lower | −ELBO/N HNN / symmetry "
          "(median) | NLL/N HNN / symmetry (median) |",
          "|---|---|---|---:|---:|---:|---:|---:|---|---|"]


def summary(topics: list[str], systems: list[str] | None = None) -> str:
    """The table of :func:`lines` over ``topics`` (the module docstring)."""
    out = list(HEADER)
    for topic in topics:
        _, metrics, _ = read_record(topic)
        if systems and metrics["settings"].get("system", "henon-heiles") not in systems:
            continue
        out += lines(topic, metrics)
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("topics", nargs="*", help="records of symmetry_evidence.py (default: all)")
    p.add_argument("--systems", nargs="+", default=None)
    args = p.parse_args(argv)
    known = evidence_topics()
    unknown = [t for t in args.topics if t not in known]
    if unknown:
        p.error(f"not a record of {' or '.join(SCRIPTS)}: {unknown}; known: {known}")
    print(summary(args.topics or known, args.systems), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
