"""How much the demo's outcome depends on the fit key: the models of ``noether-ppl demo``
refitted on the demo's data from several fit keys.

    python benchmarks/demo_sensitivity.py                         # learned + oracle, keys 0-3
    python benchmarks/demo_sensitivity.py --variant vanilla --variant learned \\
        --variant oracle --keys 0,1,2,3,4 --topic demo-keys       # the headline, over 5 keys
    python benchmarks/demo_sensitivity.py --variant learned --keys 1 \\
        --set substeps=5 --set num_steps=4000                     # one fit, other settings
    python benchmarks/demo_sensitivity.py --variant learned --keys 1 --trace-every 100 \\
        --set refit=false                                         # the joint fit, traced

Data, model settings (``noether_ppl.demo.DemoSettings``, changed with ``--set name=value``) and
evaluation are the demo's: fit key ``k`` is ``fold_in(k_fit, k)`` (the demo itself fits every
model from ``k_fit``; records written before it did so fitted vanilla from key 0, learned from
key 1 and oracle from key 2) (with ``--set restarts=N`` each fit is the best
of N by ELBO, as in ``noether-ppl demo --restarts N``; the learned model's posterior is refitted
at its learned η and the higher ELBO kept, as in the demo, unless ``--set refit=false``).
For each fit the table gives −ELBO/N and its
parts, one-step train and test MSE (posterior-mean weights, as in Table 1), the test MSE of
the predictive mean (the average prediction of 8 posterior draws), the learned
generator's parallelness with SO(2), the ratio of learned to oracle test MSE on the same key,
and the largest training loss (−ELBO/N of a step) after the first quarter of the steps next to
the loss at the end, which shows a run that left a good state for a much worse one, and for a
refitted model the joint fit's and the refit's final −ELBO/N and which was kept. Writes
``benchmarks/records/demo-sensitivity/table.md`` (``--markdown``) and the raw records as JSON
beside it; with ``--topic T`` instead a full record ``benchmarks/records/T/`` (``record.py``)
whose table ends with the median and range over the keys of every variant, and the demo's
quality bars counted over the keys that fitted all three variants (:func:`summary`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time

import jax
import numpy as np
from record import read_record, rewrite_record, write_record

from noether_ppl._io import atomic_write_json, atomic_write_text
from noether_ppl.analysis import evaluate
from noether_ppl.analysis.symmetry import symmetry_report
from noether_ppl.demo import DemoSettings, demo_data
from noether_ppl.inference.restarts import fit_restarts
from noether_ppl.models import NoetherRazor

VARIANTS = ("vanilla", "learned", "oracle")


def parse_settings(pairs: list[str]) -> DemoSettings:
    """``DemoSettings`` with ``name=value`` overrides, each converted to the field's type."""
    defaults = DemoSettings()
    fields = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(DemoSettings)}
    optional = {f.name for f in dataclasses.fields(DemoSettings) if "None" in str(f.type)}
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in fields:
            raise SystemExit(f"--set expects name=value with name one of {sorted(fields)}, "
                             f"got {pair!r}")
        current = fields[name]
        if isinstance(current, bool):
            if value.lower() not in ("true", "false"):
                raise SystemExit(f"--set {name} expects true or false, got {value!r}")
            overrides[name] = value.lower() == "true"
        elif name in optional and value.lower() == "none":
            overrides[name] = None
        elif current is None:  # the optional fields without a default are rates
            overrides[name] = float(value)
        elif isinstance(current, tuple) and all(isinstance(v, int) for v in current):
            overrides[name] = tuple(int(v) for v in value.split(","))
        elif isinstance(current, tuple):  # rates, each a float or none
            overrides[name] = tuple(None if v.lower() == "none" else float(v)
                                    for v in value.split(","))
        else:
            overrides[name] = type(current)(value)
    return dataclasses.replace(defaults, **overrides)


def run_one(settings: DemoSettings, variant: str, k: int, data, trace_every=None,
            generators=None) -> dict:
    """Fit ``variant`` (``"vanilla"``, ``"learned"``, ``"oracle"``, or any name with
    ``generators``: the symmetry fixed at those ``(1, 3, 3)``) from fit key ``k``, evaluated
    as in the demo."""
    sho, train, test, k_fit, k_eval = data
    n_conserved = 0 if variant == "vanilla" else 1
    fixed = sho.generators() if variant == "oracle" else generators
    model = NoetherRazor(settings.spec(n_conserved), phase_dim=2, generators=fixed)
    trace = []

    def record(progress):  # the learned generator's parallelness with SO(2) during training
        G = np.asarray(model.generators_from_params(progress.params), np.float64)
        trace.append({"step": progress.step,
                      "parallelness": float(symmetry_report(
                          G, reference=sho.generators()).parallelness[0]),
                      "loss": float(np.mean(progress.losses[-trace_every:]))})

    traced = {"callback": record, "chunk_size": trace_every} if trace_every else {}
    refit = settings.refit and model.learns_conserved  # as in noether_ppl.demo
    t0 = time.perf_counter()
    result = fit_restarts(model, train, key=jax.random.fold_in(k_fit, k), refit=refit,
                          refit_kwargs=settings.refit_candidates() if refit else None,
                          restarts=settings.restarts, num_steps=settings.num_steps,
                          lr=settings.lr, lr_conserved=settings.lr_conserved,
                          lr_offdiag=settings.lr_offdiag,
                          num_particles=settings.num_particles,
                          init_scale=settings.init_scale, progress_bar=False, **traced)
    wall = time.perf_counter() - t0
    ev = evaluate(result, train, {"test": test}, key=jax.random.fold_in(k_eval, k), system=sho,
                  num_samples=8, rollouts=False).to_dict()
    losses = np.asarray(result.losses)
    record = {"variant": variant, "key": k, "fit_s": wall,
              "neg_elbo_per_n": ev["neg_elbo_per_n"], "nll_per_n": ev["nll_per_n"],
              "kl_per_n": ev["kl_per_n"], "train_mse": ev["train_mse"],
              "test_mse": ev["test_mse"]["test"],
              "test_predictive_mean_mse": ev["predictive"]["test"]["predictive_mean_mse"],
              "late_max_loss": float(losses[len(losses) // 4:].max()),
              "final_loss": float(losses[-max(1, len(losses) // 40):].mean())}
    if "refit" in result.info:
        record["refit"] = result.info["refit"]
    kept = result.info["restarts"][result.info["restart"]]
    if "ran_away_at" in kept:  # fit's runaway check stopped it; its best chunk was kept
        record.update(ran_away_at=kept["ran_away_at"], steps=kept["steps"])
    if variant == "learned":
        report = symmetry_report(result.generators(), reference=sho.generators())
        record["parallelness"] = float(report.parallelness[0])
        record["conserved"] = {k: np.asarray(v).tolist() for k, v in result.params.items()
                               if k.startswith("conserved")}
        if trace:
            record["trace"] = trace
    return record


def table(records: list[dict]) -> list[str]:
    oracle = {r["key"]: r["test_mse"] for r in records if r["variant"] == "oracle"}
    lines = ["| variant | fit key | −ELBO/N | NLL/N | KL/N | train MSE | test MSE | "
             "test MSE, predictive mean | parallelness | test MSE / oracle's | "
             "largest loss after ¼ / final | fit (s) | refit: joint / refitted −ELBO/N, kept |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in records:
        par = f"{r['parallelness']:.4f}" if "parallelness" in r else "–"
        rf = r.get("refit")
        refit = "–" if rf is None else (
            f"{rf['fit_neg_elbo_per_n']:.2f} / " + (" or ".join(
                ("diverged" if c["diverged"] else f"{c['neg_elbo_per_n']:.2f}")
                + f" (lr_offdiag {c['settings'].get('lr_offdiag')})"
                for c in rf["candidates"]) if rf.get("candidates") else
                "diverged" if rf["diverged"] else f"{rf['refit_neg_elbo_per_n']:.2f}")
            + f", {rf['kept']}")
        ratio = (f"{r['test_mse'] / oracle[r['key']]:.3g}"
                 if r["variant"] == "learned" and r["key"] in oracle else "–")
        away = (f" (ran away: stopped at step {r['ran_away_at']}, state after step "
                f"{r['steps']} kept)" if "ran_away_at" in r else "")
        lines.append(
            f"| {r['variant']}{away} | {r['key']} | {r['neg_elbo_per_n']:.2f} | "
            f"{r['nll_per_n']:.2f} | "
            f"{r['kl_per_n']:.2f} | {r['train_mse']:.3e} | {r['test_mse']:.3e} | "
            f"{r['test_predictive_mean_mse']:.3e} | {par} | "
            f"{ratio} | {r['late_max_loss']:.1f} / {r['final_loss']:.1f} | {r['fit_s']:.1f} | "
            f"{refit} |")
    return lines


def _median_range(values, fmt: str) -> str:
    v = np.asarray(values, np.float64)
    return f"{format(np.median(v), fmt)} ({format(v.min(), fmt)}–{format(v.max(), fmt)})"


def summary(records: list[dict]) -> tuple[list[str], dict]:
    """Median and range over the fit keys of each variant, and the demo's quality bars (the
    learned model's test MSE within 1.2× the oracle's and its parallelness with SO(2) above
    0.99; each symmetric model's −ELBO/N below the plain HNN's) counted over the keys on which
    every variant they compare was fitted: the comparisons are paired by key. The test-MSE
    ratio is counted only on keys where the oracle fitted by its own criterion (its −ELBO/N
    below the plain HNN's on that key, when the HNN was fitted): against an oracle that ran
    away, any learned model would pass."""
    by = {v: {r["key"]: r for r in records if r["variant"] == v} for v in VARIANTS}
    lines = ["| variant | keys | −ELBO/N, median (range) | test MSE, median (range) |",
             "|---|---:|---:|---:|"]
    stats = {}
    for v in VARIANTS:
        rs = list(by[v].values())
        if not rs:
            continue
        lines.append(f"| {v} | {len(rs)} | "
                     f"{_median_range([r['neg_elbo_per_n'] for r in rs], '.2f')} | "
                     f"{_median_range([r['test_mse'] for r in rs], '.3e')} |")
        stats[v] = {"keys": sorted(by[v]),
                    "neg_elbo_per_n": [by[v][k]["neg_elbo_per_n"] for k in sorted(by[v])],
                    "test_mse": [by[v][k]["test_mse"] for k in sorted(by[v])]}
    bars = []
    learned, oracle, vanilla = by["learned"], by["oracle"], by["vanilla"]
    if learned:
        par = [learned[k]["parallelness"] for k in sorted(learned)]
        bars.append(("learned: parallelness with SO(2) > 0.99", par, 0.99, ">", ".4f"))
    if learned and oracle:
        keys = [k for k in sorted(set(learned) & set(oracle))
                if not vanilla or k not in vanilla
                or oracle[k]["neg_elbo_per_n"] < vanilla[k]["neg_elbo_per_n"]]
        ratio = [learned[k]["test_mse"] / oracle[k]["test_mse"] for k in keys]
        if keys:
            bars.append(("learned: test MSE / oracle's ≤ 1.2 (keys where the oracle's −ELBO/N "
                         "is below the HNN's: " + ", ".join(map(str, keys)) + ")",
                         ratio, 1.2, "≤", ".2f"))
    for v in ("learned", "oracle"):
        if by[v] and vanilla:
            keys = sorted(set(by[v]) & set(vanilla))
            diff = [by[v][k]["neg_elbo_per_n"] - vanilla[k]["neg_elbo_per_n"] for k in keys]
            bars.append((f"{v}: −ELBO/N − HNN's < 0", diff, 0.0, "<", ".2f"))
    if bars:
        lines += ["", "| bar | median (range) | met |", "|---|---:|---:|"]
    ops = {">": np.greater, "≤": np.less_equal, "<": np.less}
    for name, values, bound, op, fmt in bars:
        met = int(np.sum(ops[op](np.asarray(values), bound)))
        lines.append(f"| {name} | {_median_range(values, fmt)} | {met}/{len(values)} |")
        stats[name] = {"values": values, "met": met, "of": len(values)}
    return lines, stats


def trace_lines(records: list[dict]) -> list[str]:
    """Parallelness / mean −ELBO/N of the last interval, at every recorded step."""
    out = []
    for r in records:
        if "trace" in r:
            out += [f"Learned, fit key {r['key']}, during training (step: parallelness / "
                    "mean −ELBO/N of the steps since the previous entry):", "",
                    ", ".join(f"{t['step']}: {t['parallelness']:.4f} / {t['loss']:.1f}"
                              for t in r["trace"]), ""]
    return out


def _record_text(settings: dict, records: list[dict]) -> tuple[str, dict]:
    rows, stats = summary(records)
    text = "\n".join([
        "The models of `noether-ppl demo` on its data from several fit keys (fit key k is "
        "fold_in(k_fit, k)); settings: " + ", ".join(f"{k}={v}" for k, v in settings.items())
        + ".", "", *table(records), "", *rows, ""])
    return text, stats


def _rewrite(topic: str) -> int:
    """The table and summary of ``records/<topic>/`` again, from its fits (no fitting)."""
    _, metrics, _ = read_record(topic)
    text, stats = _record_text(metrics["settings"], metrics["records"])
    path = rewrite_record(topic, text, metrics={**metrics, "summary": stats},
                          how=f"python benchmarks/demo_sensitivity.py --topic {topic} "
                          "--from-record")
    print(text)
    print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, action="append")
    parser.add_argument("--keys", default="0,1,2,3", help="comma-separated fit keys")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="NAME=VALUE", help="a DemoSettings field")
    parser.add_argument("--trace-every", type=int, default=None, metavar="STEPS",
                        help="record the learned generator's parallelness with SO(2) and the "
                        "mean loss every STEPS steps (learned fits; one restart)")
    parser.add_argument("--markdown", default=os.path.join(os.path.dirname(__file__), "records",
                                                           "demo-sensitivity", "table.md"))
    parser.add_argument("--topic", default=None,
                        help="write a full record benchmarks/records/TOPIC/ (with the median "
                        "and range over the keys) instead of --markdown")
    parser.add_argument("--from-record", action="store_true",
                        help="with --topic: no fitting; write the record's table and summary "
                        "again from the fits in its metrics.json (its command, settings and "
                        "wall time kept; a note says so)")
    args = parser.parse_args(argv)
    if args.from_record:
        if args.topic is None:
            raise SystemExit("--from-record needs --topic")
        return _rewrite(args.topic)
    settings = parse_settings(args.overrides)
    if args.trace_every is not None and (args.trace_every < 1 or settings.restarts > 1
                                         or settings.refit):
        raise SystemExit("--trace-every expects a positive number of steps, one restart and "
                         "--set refit=false")
    variants = args.variant or ["learned", "oracle"]
    keys = [int(k) for k in args.keys.split(",")]

    data = demo_data(settings)

    start = time.perf_counter()
    records = []
    for variant in variants:
        for k in keys:
            records.append(run_one(settings, variant, k, data,
                                   args.trace_every if variant == "learned" else None))
            r = records[-1]
            print(f"{variant} key {k}: -ELBO/N {r['neg_elbo_per_n']:.2f}, test MSE "
                  f"{r['test_mse']:.3e}" + (f", parallelness {r['parallelness']:.4f}"
                                             if "parallelness" in r else ""), flush=True)
    command = "python benchmarks/demo_sensitivity.py " + " ".join(argv or sys.argv[1:])
    if args.topic is not None:
        text, stats = _record_text(dataclasses.asdict(settings), records)
        for r in records:
            r.pop("trace", None)
        path = write_record(args.topic, table=text, metrics={
            "settings": dataclasses.asdict(settings), "records": records, "summary": stats},
            command=command.strip(), wall_s=time.perf_counter() - start)
        print(text)
        print(f"wrote {path}")
        return 0
    lines = ["# Demo: dependence on the fit key", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}, "
             f"backend {jax.default_backend()}", "", f"Command: `{command.strip()}`", "",
             "Settings: " + ", ".join(f"{k}={v}" for k, v in
                                      dataclasses.asdict(settings).items()), "",
             *table(records), "", *trace_lines(records)]
    atomic_write_text(args.markdown, "\n".join(lines))
    atomic_write_json(os.path.splitext(args.markdown)[0] + ".json",
                      {"command": command.strip(), "settings": dataclasses.asdict(settings),
                       "records": records})
    print("\n".join(lines))
    print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
