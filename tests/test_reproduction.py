"""The tables in REPRODUCTION.md are their records' tables, and every record cited exists."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ROOT / "benchmarks" / "records"
BLOCK = re.compile(r"<!-- record: ([\w.-]+) -->\n(.*?)<!-- /record -->", re.S)
DOCS = ["REPRODUCTION.md", "README.md", "benchmarks/results.md"]


def _blocks():
    return BLOCK.findall((ROOT / "REPRODUCTION.md").read_text())


def test_reproduction_quotes_records():
    assert _blocks(), "REPRODUCTION.md quotes no record table"


@pytest.mark.parametrize("topic, text", _blocks(), ids=[t for t, _ in _blocks()])
def test_quoted_table_equals_its_record(topic, text):
    record = RECORDS / topic
    assert (record / "table.md").is_file(), f"no record {record}"
    assert text.strip() == (record / "table.md").read_text().strip(), (
        f"REPRODUCTION.md's table of {topic!r} differs from {record / 'table.md'}: copy the "
        f"record's table again")
    meta = json.loads((record / "record.json").read_text())
    assert meta["command"] and meta.get("commit")


@pytest.mark.parametrize("doc", DOCS)
def test_every_cited_record_exists(doc):
    text = (ROOT / doc).read_text()
    cited = set(re.findall(r"records/([\w.-]+)/", text))
    missing = sorted(t for t in cited if not (RECORDS / t / "record.json").is_file())
    assert not missing, f"{doc} cites records that do not exist: {missing}"
