"""Step 4 of ``fit_auto`` at an equal budget, applied to the folder of a ``noether-ppl fit
--auto`` run: the selected fit against the plain HNN as fitted (step 4 before the equal
budget) and against that HNN continued from its fitted state for as many steps as the
selection's fit was continued (``analysis.auto.continue_hnn``, step 4 now). No fit of the
razor is repeated; only the HNN's continuation is fitted.

    noether-ppl fit nbody2d3-cpu --variant vanilla --variant learned --auto ... --out runs/nb
    python benchmarks/equal_budget.py runs/nb --topic nbody2d3-cpu-auto-equal-budget

The continuation's settings are the selected run's (its ``run.json``), its length the
selection's ``continued_steps`` (``selection.json``; in a folder written before that was
recorded, counted from the selection's steps: each rung's settling continuation, each
removal's, and the refit when it was kept, at ``select_steps`` each). Test MSE scores only.
Writes ``benchmarks/records/<topic>/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import jax
from record import write_record

from noether_ppl import analysis, inference
from noether_ppl.analysis.auto import continue_hnn
from noether_ppl.inference.select import DEFAULT_TOLERANCE
from noether_ppl.runs.folder import open_run


def continued_steps(selection: dict, select_steps: int) -> int:
    """Steps of the continuation fits behind the selection's returned fit (its
    ``continued_steps``, or counted from its ``steps`` for the rule ``"conserved"``)."""
    if "continued_steps" in selection:
        return int(selection["continued_steps"])
    if selection["criterion"] != "conserved":
        raise ValueError("A selection recorded without `continued_steps` can be counted only "
                         f"for the criterion 'conserved', not {selection['criterion']!r}.")
    steps = selection["steps"]
    removals = sum(1 for s in steps if s.get("reason") == "not conserved by the fitted H")
    settled = removals + (1 if removals < selection["start_dimension"] else 0)
    refit = sum(1 for s in steps if s.get("reason") == "spectrum" and s.get("kept") == "refit")
    return int(select_steps) * (settled + removals + refit)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", help="experiment folder of `noether-ppl fit --auto`")
    p.add_argument("--selected", default="learned-selected", help="the selected run's folder")
    p.add_argument("--hnn", default="vanilla", help="the plain HNN's run folder")
    p.add_argument("--seed", type=int, default=0, help="key of the continuation and estimates")
    p.add_argument("--topic", required=True)
    args = p.parse_args(argv)
    start = time.perf_counter()
    sel_dir = os.path.join(args.folder, args.selected)
    selected, hnn = open_run(sel_dir), open_run(os.path.join(args.folder, args.hnn))
    with open(os.path.join(sel_dir, "selection.json")) as f:
        auto = json.load(f)
    with open(os.path.join(sel_dir, "run.json")) as f:
        settings = json.load(f)["fit"]
    fields = {f.name for f in dataclasses.fields(inference.FitSettings)} - {"num_steps"}
    kwargs = {k: (float("inf") if v == "inf" else v) for k, v in settings.items()
              if k in fields}
    steps = continued_steps(auto["selection"], settings["select_steps"])
    train, test = selected.train, selected.tests.get("test")
    key = jax.random.key(args.seed)
    k_fit, k_cmp, k_eval = jax.random.split(key, 3)
    t = time.perf_counter()
    cont, stopped = continue_hnn(hnn.result, train, steps, key=k_fit, select_kwargs=kwargs)
    cont_s = time.perf_counter() - t
    rows = []
    compared = [("as fitted", hnn.result, hnn.result.steps)]
    if stopped is None:
        compared.append(("continued", cont, hnn.result.steps + steps))
    for name, h, hnn_steps in compared:
        delta, se, est_sel, est_hnn = inference.elbo_difference(selected.result, h, train,
                                                                key=k_cmp)
        kept = "hnn" if delta < -(DEFAULT_TOLERANCE + 2.0 * se) else "selected"
        rows.append({"hnn": name, "hnn_steps": int(hnn_steps), "delta": delta, "se": se,
                     "neg_elbo_per_n_selected": est_sel.neg_elbo_per_n,
                     "neg_elbo_per_n_hnn": est_hnn.neg_elbo_per_n, "kept": kept,
                     "test_mse_hnn": None if test is None else
                     analysis.one_step_mse(h, test, key=k_eval)})
    sel_mse = None if test is None else analysis.one_step_mse(selected.result, test, key=k_eval)
    recorded = auto.get("against_hnn", {})
    mse_text = "–" if sel_mse is None else f"{sel_mse:.4e}"
    lines = [f"Step 4 of `fit --auto` in {os.path.basename(os.path.normpath(args.folder))!r}: "
             f"the selected fit (dimension {auto['selection']['dimension']}, its fit continued "
             f"for {steps} steps beyond the razor's) against the plain HNN as fitted and "
             f"continued as long (continuation {cont_s:.0f} s). Recorded in the run: ELBO "
             f"selected − HNN = {recorded.get('delta', float('nan')):+.1f} ± "
             f"{recorded.get('se', float('nan')):.1f} nats, kept {auto.get('kept')!r}. "
             f"Test MSE of the selected fit: {mse_text}."
             + ("" if stopped is None else
                f" The continuation {stopped['reason']} at step {stopped['step']} (the HNN as "
                "fitted is then what step 4 compares)."), "",
             "| plain HNN | its steps | −ELBO/N HNN | −ELBO/N selected | ELBO selected − HNN "
             "(nats) | step 4 keeps | test MSE HNN |",
             "|---|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        mse = "–" if r["test_mse_hnn"] is None else f"{r['test_mse_hnn']:.4e}"
        lines.append(f"| {r['hnn']} | {r['hnn_steps']} | {r['neg_elbo_per_n_hnn']:.3f} | "
                     f"{r['neg_elbo_per_n_selected']:.3f} | {r['delta']:+.1f} ± {r['se']:.1f} "
                     f"| {r['kept']} | {mse} |")
    table = "\n".join(lines) + "\n"
    write_record(args.topic, table=table,
                 metrics={"settings": vars(args), "continued_steps": steps,
                          "continuation_stopped": stopped,
                          "continuation_settings": kwargs, "selected_test_mse": sel_mse,
                          "recorded_against_hnn": recorded, "rows": rows},
                 command=sys.argv, wall_s=time.perf_counter() - start)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
