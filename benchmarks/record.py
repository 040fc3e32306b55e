"""Records behind every number: one folder per topic under ``benchmarks/records/``.

A record is what a reader needs to check a table and make it again: ``table.md`` (the table as
printed), ``metrics.json`` (the numbers, machine-readable) and ``record.json`` (the command,
the commit, the package versions, the machine and the wall time). Only the current record of a
topic is kept; git keeps the superseded ones.

Usage from a benchmark script::

    from record import write_record
    write_record("discovery", table=text, metrics=rows, command=sys.argv, wall_s=t)
"""

from __future__ import annotations

import datetime
import json
import re
import shlex
import sys
from pathlib import Path

from noether_ppl._io import atomic_write_json, atomic_write_text
from noether_ppl.provenance import commit, environment

__all__ = ["RECORDS", "write_record", "publish", "rewrite_record", "read_record", "environment",
           "sync_quoted_tables"]

RECORDS = Path(__file__).resolve().parent / "records"
"""Where the records live: ``benchmarks/records/<topic>/``."""

def write_record(topic: str, *, table: str, metrics, command, wall_s: float,
                 notes: str | None = None, commands: list[str] | None = None) -> Path:
    """Write ``records/<topic>/{table.md, metrics.json, record.json}`` atomically.

    ``command`` is the argument list (e.g. ``sys.argv``) or the shell line that made the record;
    ``metrics`` any JSON-serialisable object (no large arrays); ``commands``: every command
    that contributed to a record written in several sittings, in order."""
    if not topic or "/" in topic or topic.startswith("."):
        raise ValueError(f"Expected a plain folder name for `topic`, got {topic!r}.")
    folder = RECORDS / topic
    if not isinstance(command, str):
        command = shlex.join(["python", *map(str, command)])
    meta = {
        "topic": topic,
        "command": command,
        "commit": commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(float(wall_s), 1),
        "environment": environment(),
    }
    if commands:
        meta["commands"] = list(commands)
    if notes:
        meta["notes"] = notes
    atomic_write_text(folder / "table.md", table if table.endswith("\n") else table + "\n")
    atomic_write_json(folder / "metrics.json", metrics)
    atomic_write_json(folder / "record.json", meta)
    return folder


def publish(args, table: str, rows: list, started: float) -> int:
    """The end of a one-sitting benchmark script: write the record of ``args.topic`` (its
    settings ``vars(args)`` and ``rows`` as metrics, ``sys.argv`` as the command, the wall time
    since ``time.perf_counter()`` read ``started``), print the table, return exit status 0.
    With ``args.topic`` None, only print the table."""
    import time

    if args.topic is None:
        print(table, end="" if table.endswith("\n") else "\n")
        return 0
    write_record(args.topic, table=table, metrics={"settings": vars(args), "rows": rows},
                 command=sys.argv, wall_s=time.perf_counter() - started)
    print(table)
    return 0


def add_topic_arguments(p) -> None:
    """``--topic`` (write the record ``records/TOPIC/``; default: print the table only) and
    ``--rebuild`` of a one-sitting benchmark script (:func:`publish`, :func:`rebuild`)."""
    p.add_argument("--topic", default=None,
                   help="write the record benchmarks/records/TOPIC/ (default: print only)")
    add_rebuild_argument(p)


def add_rebuild_argument(p) -> None:
    """A benchmark script's ``--rebuild`` (see :func:`rewrite_record`)."""
    p.add_argument("--rebuild", action="store_true",
                   help="write the topic's table again from its recorded rows and settings, "
                        "no fitting (the command and wall time stay the run's)")


def rebuild(p, args, table, script: str, argv=None) -> int:
    """``--rebuild`` of a one-sitting benchmark script whose record :func:`publish` wrote: its
    ``table(rows, settings)`` made again from the stored rows and settings of ``args.topic``
    (the record's settings over ``args``), written by :func:`rewrite_record`, printed."""
    import argparse

    if args.topic is None:
        p.error("--rebuild needs --topic")
    _, stored, _ = read_record(args.topic)
    recorded = argparse.Namespace(**{**vars(args), **stored["settings"], "rebuild": True})
    text = table(stored["rows"], recorded)
    rewrite_record(args.topic, text, how=f"python {script} "
                   + " ".join(argv if argv is not None else sys.argv[1:]))
    print(text)
    return 0


_REBUILT = "Table rebuilt without fitting by"
"""How the note of :func:`rewrite_record` begins (a later rewrite replaces it)."""


def rewrite_record(topic: str, table: str, *, how: str, metrics: dict | None = None) -> Path:
    """Write ``records/<topic>/`` again with a new ``table`` built from its stored results, no
    fitting: the command(s) and wall time stay those of the run that made them, ``metrics``
    (default: the stored ones) gains ``fits_commit`` (that run's commit, kept over repeated
    rewrites), the record's notes are kept and a note says ``how`` (the command that rebuilt
    the table; it replaces the note of an earlier rewrite)."""
    _, stored, meta = read_record(topic)
    metrics = dict(stored if metrics is None else metrics)
    metrics["fits_commit"] = stored.get("fits_commit", meta["commit"])
    kept = meta.get("notes", "").split(_REBUILT)[0].strip()
    note = (f"{_REBUILT} `{how}` from the results in metrics.json, made by the command above "
            f"(wall time of that run) at commit {metrics['fits_commit']}.")
    return write_record(topic, table=table, metrics=metrics, command=meta["command"],
                        commands=meta.get("commands"), wall_s=meta["wall_s"],
                        notes=f"{kept} {note}" if kept else note)


def read_record(topic: str) -> tuple[str, object, dict]:
    """``(table, metrics, record)`` of ``records/<topic>/``."""
    folder = RECORDS / topic
    table = (folder / "table.md").read_text()
    metrics = json.loads((folder / "metrics.json").read_text())
    meta = json.loads((folder / "record.json").read_text())
    return table, metrics, meta


_BLOCK = re.compile(r"(<!-- record: ([\w.-]+) -->\n)(.*?)(<!-- /record -->)", re.S)


def sync_quoted_tables(path) -> list[str]:
    """Replace every ``<!-- record: TOPIC -->`` … ``<!-- /record -->`` block of the markdown
    file ``path`` by ``records/TOPIC/table.md``; returns the topics (``tests/test_reproduction.py``
    checks that the blocks equal their records)."""
    path = Path(path)
    topics = []

    def quote(m):
        topics.append(m.group(2))
        return m.group(1) + (RECORDS / m.group(2) / "table.md").read_text() + m.group(4)

    atomic_write_text(path, _BLOCK.sub(quote, path.read_text()))
    return topics


if __name__ == "__main__":  # pragma: no cover - a quick look at what is recorded
    if len(sys.argv) > 2 and sys.argv[1] == "--sync":  # python benchmarks/record.py --sync F.md
        print("quoted:", ", ".join(sync_quoted_tables(sys.argv[2])))
        sys.exit(0)
    for path in sorted(RECORDS.glob("*/record.json")):
        meta = json.loads(path.read_text())
        print(f"{path.parent.name}: {meta['command']} ({meta['commit'][:12]}, {meta['date']})")
    sys.exit(0)
