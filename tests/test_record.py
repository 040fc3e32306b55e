"""``benchmarks/record.py``: a record rewritten without fitting keeps the command and wall time
of the run that made its results, and names that run's commit however often it is rewritten."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import record  # noqa: E402


def test_rewrite_keeps_the_run_and_names_its_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(record, "RECORDS", tmp_path)
    monkeypatch.setattr(record, "commit", lambda: "aaa")
    record.write_record("t", table="old", metrics={"rows": [1]}, command="python run.py",
                        wall_s=12.34, commands=["python run.py --a", "python run.py"])
    monkeypatch.setattr(record, "commit", lambda: "bbb")
    record.rewrite_record("t", "new", how="python run.py --from-record")
    table, metrics, meta = record.read_record("t")
    assert table == "new\n" and metrics == {"rows": [1], "fits_commit": "aaa"}
    assert meta["command"] == "python run.py" and meta["wall_s"] == 12.3
    assert meta["commands"] == ["python run.py --a", "python run.py"]
    assert meta["commit"] == "bbb" and "commit aaa" in meta["notes"]
    assert "python run.py --from-record" in meta["notes"]
    # a second rewrite at another commit still names the run's own
    monkeypatch.setattr(record, "commit", lambda: "ccc")
    record.rewrite_record("t", "newer", how="x", metrics={"rows": [2]})
    _, metrics, meta = record.read_record("t")
    assert metrics == {"rows": [2], "fits_commit": "aaa"} and "commit aaa" in meta["notes"]


def test_rewrite_keeps_the_records_notes_and_replaces_an_earlier_rewrites(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(record, "RECORDS", tmp_path)
    monkeypatch.setattr(record, "commit", lambda: "aaa")
    record.write_record("t", table="old", metrics={"rows": [1]}, command="python run.py",
                        wall_s=1.0, notes="Made on an idle machine.")
    record.rewrite_record("t", "new", how="first")
    record.rewrite_record("t", "newer", how="second")
    notes = record.read_record("t")[2]["notes"]
    assert notes.startswith("Made on an idle machine. Table rebuilt without fitting by `second`")
    assert "`first`" not in notes and notes.count("Table rebuilt") == 1


def test_publish_writes_settings_rows_and_command_then_prints(tmp_path, monkeypatch, capsys):
    import argparse
    import sys
    import time

    monkeypatch.setattr(record, "RECORDS", tmp_path)
    monkeypatch.setattr(sys, "argv", ["bench.py", "--topic", "t"])
    args = argparse.Namespace(topic="t", keys=[0, 1])
    assert record.publish(args, "| a |\n", [{"key": 0}], time.perf_counter()) == 0
    table, metrics, meta = record.read_record("t")
    assert table == "| a |\n" and capsys.readouterr().out == "| a |\n\n"
    assert metrics == {"settings": {"topic": "t", "keys": [0, 1]}, "rows": [{"key": 0}]}
    assert meta["command"] == "python bench.py --topic t" and meta["wall_s"] >= 0
