"""Text tables in the layout of the paper's Tables 1–3 (Sec. 5), one row per run or variant.

Rows are the metrics dicts of :meth:`~noether_ppl.analysis.evaluate.Evaluation.to_dict` (or the
``Evaluation`` objects themselves): ``train_mse``, ``nll_per_n``, ``kl_per_n``,
``neg_elbo_per_n`` and ``test_mse`` (a ``{set name: MSE}`` dict, or one number for the set
``"test"``; ``test_mse_sets`` is read as well). A value a row lacks is shown as ``—``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["LAYOUTS", "format_table", "table_columns", "table_layout", "table_title",
           "TABLE_NUMBER"]

_TRAIN_COLUMNS = [
    ("train MSE", "train_mse", "{:.3e}"),
    ("NLL/N", "nll_per_n", "{:.2f}"),
    ("KL/N", "kl_per_n", "{:.3f}"),
    ("-ELBO/N", "neg_elbo_per_n", "{:.2f}"),
]

LAYOUTS = {
    "table1": ("test",),
    "table3": ("test", "moved", "wider"),
    "auto": None,
}
"""Test-set columns of each layout: Table 1 (and 2) report the test set, Table 3 adds the
"moved" and "wider" sets; ``"auto"`` shows every test set found in the rows, in order."""

_MISSING = "—"

TABLE_NUMBER = {"harmonic_oscillator": 1, "coupled_oscillators": 2, "nbody": 3}
"""The paper's table of each system (``SYSTEM_PARAMETERS`` of :mod:`noether_ppl.systems`)."""


def table_layout(test_names) -> str:
    """The :func:`format_table` layout for these test sets."""
    names = list(test_names)
    if {"test", "moved", "wider"} <= set(names):
        return "table3"
    if names == ["test"]:
        return "table1"
    return "auto"


def table_title(name: str, system_name: str | None) -> str:
    """A table's title: ``name``, and the paper's table whose layout it follows."""
    number = TABLE_NUMBER.get(system_name)
    layout = f" (paper Table {number} layout)" if number else ""
    return f"{name}{layout}"


def _as_row(name, row) -> Mapping:
    if hasattr(row, "to_dict") and callable(row.to_dict):
        row = row.to_dict()
    if not isinstance(row, Mapping):
        raise ValueError(
            f"Expected row {name!r} of `rows` to be a metrics dict (Evaluation.to_dict()), got "
            f"{type(row).__name__}."
        )
    return row


def _test_mses(name, row: Mapping) -> dict:
    out = {}
    value = row.get("test_mse")
    if isinstance(value, Mapping):
        out.update(value)
    elif value is not None:
        out["test"] = value
    sets = row.get("test_mse_sets")
    if isinstance(sets, Mapping):
        for k, v in sets.items():
            out.setdefault(k, v)
    elif sets is not None:
        raise ValueError(f"Expected `test_mse_sets` of row {name!r} to be a dict, got "
                         f"{type(sets).__name__}.")
    return out


def table_columns(rows: Mapping, layout: str = "auto") -> list[tuple[str, str]]:
    """``[(header, key)]`` of the table for ``rows`` in ``layout``; test-set columns have keys
    ``"test_mse:<set>"``."""
    if layout not in LAYOUTS:
        raise ValueError(f"Unknown `layout` {layout!r}; expected one of {sorted(LAYOUTS)}.")
    sets = LAYOUTS[layout]
    if sets is None:
        found: list[str] = []
        for name, row in rows.items():
            for s in _test_mses(name, _as_row(name, row)):
                if s not in found:
                    found.append(s)
        sets = tuple(found)
    cols = [(header, key) for header, key, _ in _TRAIN_COLUMNS]
    cols += [("test MSE" if s == "test" else f"{s} MSE", f"test_mse:{s}") for s in sets]
    return cols


def _cell(name, row: Mapping, key: str) -> str:
    if key.startswith("test_mse:"):
        value = _test_mses(name, row).get(key.split(":", 1)[1])
        fmt = "{:.3e}"
    else:
        value = row.get(key)
        fmt = next(f for _, k, f in _TRAIN_COLUMNS if k == key)
    if value is None:
        return _MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(
            value, "__float__"):
        raise ValueError(f"Expected a number for {key!r} in row {name!r}, got {value!r}.")
    value = float(value)
    return fmt.format(value) if math.isfinite(value) else str(value)


def format_table(rows: Mapping, title: str = "", *, layout: str = "auto",
                 fmt: str = "text") -> str:
    """A table like the paper's (Tables 1–3): one row per entry of ``rows``
    (``{row name: metrics}``), columns train MSE, NLL/N, KL/N, −ELBO/N and the test MSEs of
    ``layout`` (``"table1"``, ``"table3"`` or ``"auto"``, see :data:`LAYOUTS`).

    ``fmt="text"`` gives aligned plain text; ``fmt="markdown"`` a Markdown table.
    """
    if not isinstance(rows, Mapping) or not rows:
        raise ValueError("Expected `rows` to be a non-empty dict {row name: metrics dict}.")
    if fmt not in ("text", "markdown"):
        raise ValueError(f"Unknown `fmt` {fmt!r}; expected 'text' or 'markdown'.")
    if not isinstance(title, str):
        raise ValueError(f"Expected `title` to be a string, got {type(title).__name__}.")
    parsed = {str(name): _as_row(name, row) for name, row in rows.items()}
    cols = table_columns(parsed, layout)
    body = [[name] + [_cell(name, row, key) for _, key in cols] for name, row in parsed.items()]
    header = ["model"] + [h for h, _ in cols]
    lines = [title] if title else []
    if fmt == "markdown":
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * len(cols)) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    widths = [max(w, 9) if i else w for i, w in enumerate(widths)]

    def line(cells):
        return " ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                        for i, c in enumerate(cells)).rstrip()

    head = line(header)
    lines += [head, "-" * len(head)] + [line(r) for r in body]
    return "\n".join(lines)
