"""`tastebud events replay FILE --kinesis STREAM | --jsonl PATH`: the EventSink adapters behind the CLI. Every
record is checked with the consumer's codec first; one bad record sends nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tastebud.adapters.local_events import JsonlEventSink
from tastebud_cli.app import app

from helpers import read_kinesis_stream

RECORDS = [{"user_id": "u1", "item_id": "i1", "event_type": "purchase", "timestamp": 1_760_000_000 + i,
            "session_id": "s1"} for i in range(3)] + [
           {"event_id": "mine-1", "user_id": "u2", "item_id": "i9", "event_type": "click",
            "timestamp": "2025-10-09T08:53:20Z", "position": 2}]


def _file(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_replay_puts_every_event_on_the_stream_with_a_stable_id(kinesis: Any, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["events", "replay", str(_file(tmp_path, RECORDS)), "--kinesis", "events"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"sent": 4, "records": 4, "destination": "kinesis:events"}
    events = read_kinesis_stream(kinesis)
    assert sorted(e.timestamp for e in events) == [1_760_000_000.0, 1_760_000_000.0, 1_760_000_001.0,
                                                   1_760_000_002.0]  # "2025-10-09T08:53:20Z" is 1_760_000_000
    assert {e.event_id for e in events} >= {"mine-1"} and all(e.event_id for e in events)
    assert len({e.event_id for e in events}) == 4
    # The same file again: the same ids, which the ingest function drops as seen.
    again = CliRunner().invoke(app, ["events", "replay", str(_file(tmp_path, RECORDS)), "--kinesis", "events"])
    assert again.exit_code == 0
    assert {e.event_id for e in read_kinesis_stream(kinesis)} == {e.event_id for e in events}


def test_one_bad_record_sends_nothing_and_names_the_record_and_field(kinesis: Any, tmp_path: Path) -> None:
    bad = [*RECORDS[:2], {**RECORDS[2], "event_type": "teleport"}, RECORDS[3]]
    result = CliRunner().invoke(app, ["events", "replay", str(_file(tmp_path, bad)), "--kinesis", "events"])

    assert result.exit_code == 2
    assert "record 2" in result.stderr and "event_type" in result.stderr
    assert "1 of 4 records are invalid; nothing was sent" in result.stderr
    assert read_kinesis_stream(kinesis) == []


def test_a_missing_stream_is_a_clear_error(kinesis: Any, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["events", "replay", str(_file(tmp_path, RECORDS)), "--kinesis", "nope"])

    assert result.exit_code == 2
    assert "kinesis:nope: 0 of 4 events sent" in result.stderr and "ResourceNotFound" in result.stderr


def test_replay_to_a_file_writes_what_the_stream_would_carry(tmp_path: Path) -> None:
    out = tmp_path / "out" / "events.jsonl"
    result = CliRunner().invoke(app, ["events", "replay", str(_file(tmp_path, RECORDS)), "--jsonl", str(out)])

    assert result.exit_code == 0, result.output
    events = JsonlEventSink(out).read()
    assert [e.user_id for e in events] == ["u1", "u1", "u1", "u2"] and events[3].event_id == "mine-1"
    assert events[3].position == 2 and events[3].timestamp == 1_760_000_000.0


def test_one_destination_at_a_time(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["events", "replay", str(_file(tmp_path, RECORDS)), "--kinesis", "events",
                                      "--jsonl", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2 and "choose one destination" in result.stderr
