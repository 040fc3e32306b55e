"""Two records of ``discovery.py`` side by side, system by system (no fitting).

``python discovery_compare.py TOPIC_A TOPIC_B`` prints, for every system in both records, the
razor's K in each, how many keys each got right (the selected dimension equal to the true one
and every selected direction at parallelness > 0.95, after step 4), on how many keys the
selection itself read the true dimension (``selection.dimension``, before step 4 compared it
with the plain HNN), and the medians over the keys of the HNN's continuation in step 4
(``hnn_continued_steps``: the steps the selection's fit was continued), of the selected fit's
ELBO minus the continued HNN's (``selected_minus_hnn_elbo``, nats) and of the wall time per
key. Only keys present in both records are counted. With more than two records
(``python discovery_compare.py A B C ...``): one line per system and record, the same
columns plus the returned fit's median test MSE, over the keys present in every record.
Under the table, for each record whose rows fitted step 4's symmetrised HNN
(``--symmetrised-hnn``), per system over all its keys: on how many it was fitted, on how many
its ELBO was above the selection's fit's (``symmetrised_vs_selected``) and on how many it was
the returned fit (``razor_kept`` ``"hnn-symmetrised"``). ``--systems NAME ...`` keeps only
those systems (in the order of the first record).
"""

from __future__ import annotations

import argparse
import statistics
import sys

from record import read_record


def _median(values) -> str:
    values = [v for v in values if v is not None]
    return f"{statistics.median(values):.0f}" if values else "–"


def _read(rows) -> int:
    return sum(r["selection"]["dimension"] == r["true_dim"] for r in rows)


def _cells(ra, rb, key) -> str:
    return f"{_median(r.get(key) for r in ra)} / {_median(r.get(key) for r in rb)}"


def compare(rows_a: list[dict], rows_b: list[dict], names=("A", "B")) -> str:
    """The markdown table of the module docstring for two lists of ``discovery.py`` rows."""
    a_name, b_name = names
    systems = list(dict.fromkeys(r["system"] for r in rows_a))
    out = [f"| system | true | K, {a_name} | K, {b_name} | keys | right, {a_name} | right, "
           f"{b_name} | selection read the true dimension, {a_name} / {b_name} | HNN continued "
           f"in step 4 (steps, median), {a_name} / {b_name} | selected − HNN ELBO (nats, "
           f"median), {a_name} / {b_name} | wall per key (s, median), {a_name} / {b_name} |",
           "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|"]
    for name in systems:
        by_key_b = {r["key"]: r for r in rows_b if r["system"] == name}
        pairs = [(r, by_key_b[r["key"]]) for r in rows_a
                 if r["system"] == name and r["key"] in by_key_b]
        if not pairs:
            continue
        ra, rb = [p[0] for p in pairs], [p[1] for p in pairs]
        out.append(f"| {name} | {ra[0]['true_dim']} | {ra[0]['K']} | {rb[0]['K']} | {len(pairs)} "
                   f"| {sum(bool(r['razor_ok']) for r in ra)} | "
                   f"{sum(bool(r['razor_ok']) for r in rb)} | {_read(ra)} / {_read(rb)} | "
                   f"{_cells(ra, rb, 'hnn_continued_steps')} | "
                   f"{_cells(ra, rb, 'selected_minus_hnn_elbo')} | {_cells(ra, rb, 'wall_s')} |")
    return "\n".join(out) + "\n"


def _median_e(values) -> str:
    values = [v for v in values if v is not None]
    return f"{statistics.median(values):.3e}" if values else "–"


def compare_many(rows: list[list[dict]], names) -> str:
    """Several records, one line per system and record: only the system/key pairs present in
    every record count. Adds the median test MSE of the returned fit (``razor_test_mse``)."""
    keys = set.intersection(*({(r["system"], r["key"]) for r in rs} for rs in rows))
    systems = list(dict.fromkeys(r["system"] for r in rows[0]))
    out = ["| system | true | record | K | keys | right | selection read the true dimension | "
           "HNN continued in step 4 (steps, median) | selected − HNN ELBO (nats, median) | "
           "test MSE of the returned fit (median) | wall per key (s, median) |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in systems:
        for rs, topic in zip(rows, names, strict=True):
            sel = sorted((r for r in rs if (r["system"], r["key"]) in keys
                          and r["system"] == name), key=lambda r: r["key"])
            if not sel:
                continue
            out.append(f"| {name} | {sel[0]['true_dim']} | {topic} | {sel[0]['K']} | {len(sel)} | "
                       f"{sum(bool(r['razor_ok']) for r in sel)} | {_read(sel)} | "
                       f"{_median(r.get('hnn_continued_steps') for r in sel)} | "
                       f"{_median(r.get('selected_minus_hnn_elbo') for r in sel)} | "
                       f"{_median_e(r.get('razor_test_mse') for r in sel)} | "
                       f"{_median(r.get('wall_s') for r in sel)} |")
    return "\n".join(out) + "\n"


def symmetrised_counts(rows: list[dict], name: str) -> str:
    """Step 4's symmetrised HNN in one record's rows, per system (module docstring); "" when
    no row fitted it."""
    out = []
    for system in dict.fromkeys(r["system"] for r in rows):
        rs = [r for r in rows if r["system"] == system]
        fitted = [r["symmetrised_vs_selected"] for r in rs
                  if "delta" in (r.get("symmetrised_vs_selected") or {})]
        if fitted:
            out.append(f"| {system} | {len(rs)} | {len(fitted)} | "
                       f"{sum(d['delta'] > 0 for d in fitted)} | "
                       f"{sum(r.get('razor_kept') == 'hnn-symmetrised' for r in rs)} |")
    if not out:
        return ""
    return "\n".join([f"Step 4's symmetrised HNN in {name}:", "",
                      "| system | keys | fitted | above the selection's fit | returned |",
                      "|---|---:|---:|---:|---:|", *out]) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("topics", nargs="+", help="two or more topics under benchmarks/records/ "
                   "(more than two: one line per system and record)")
    p.add_argument("--systems", nargs="+", default=None,
                   help="only these systems (default: every system of the first record)")
    args = p.parse_args(argv)
    if len(args.topics) < 2:
        p.error("expected two or more topics")
    rows = []
    for topic in args.topics:
        try:
            rows.append(read_record(topic)[1]["rows"])
        except (FileNotFoundError, KeyError, TypeError):
            p.error(f"{topic!r} is not a record of discovery.py (records/<topic>/metrics.json "
                    "with its rows)")
    if args.systems is not None:
        missing = sorted(set(args.systems) - {r["system"] for rs in rows for r in rs})
        if missing:
            p.error(f"--systems {missing} are in none of the records")
        rows = [[r for r in rs if r["system"] in args.systems] for rs in rows]
    print(compare(*rows, names=tuple(args.topics)) if len(rows) == 2
          else compare_many(rows, names=tuple(args.topics)))
    for rs, topic in zip(rows, args.topics, strict=True):
        if text := symmetrised_counts(rs, topic):
            print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
