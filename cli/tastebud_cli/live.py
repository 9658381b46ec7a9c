"""CLI commands for a running marketplace: replay events, upsert catalog items, list and roll back versions."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from tastebud_cli.console import err, fail, out

events_app = typer.Typer(no_args_is_help=True, help="Send interaction events to a running server.")
catalog_app = typer.Typer(no_args_is_help=True, help="Change the catalog of a running server.")
versions_app = typer.Typer(no_args_is_help=True, help="List artifact versions; roll back.")

URL = typer.Option("--url", help="Base URL of a running `tastebud serve`")
BATCH = 500  # the events route's limit


def read_records(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON Lines, JSON array, CSV or Parquet file; errors name the file and line."""
    if not path.is_file():
        fail(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet"):
        import pandas as pd

        frame = pd.read_csv(path, dtype=str, keep_default_na=False) if suffix == ".csv" else pd.read_parquet(path)
        records = frame.to_dict(orient="records")
        return [{k: v for k, v in r.items() if v not in ("", None) and not (isinstance(v, float) and math.isnan(v))}
                for r in records]
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            document = json.loads(text)
        except ValueError as exc:
            fail(f"{path}: not valid JSON: {exc}")
        return list(document)
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError as exc:
                fail(f"{path}, line {number}: not valid JSON: {exc}")
    return records


def _numbers(record: dict[str, Any]) -> dict[str, Any]:
    """CSV cells are text; the API takes numbers where the contract has numbers."""
    fixed = dict(record)
    for name in ("timestamp", "position", "quantity", "price"):
        value = fixed.get(name)
        if isinstance(value, str):
            try:
                number = float(value)
                fixed[name] = int(number) if number.is_integer() and name != "price" else number
            except ValueError:
                pass  # e.g. an ISO-8601 timestamp: the server parses it
    return fixed


def with_event_id(record: dict[str, Any]) -> dict[str, Any]:
    """Events without an id get one derived from their content, so replaying the same file is idempotent."""
    if record.get("event_id"):
        return record
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return {**record, "event_id": f"replay-{digest}"}


def _batches(records: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(records), size):
        yield records[start:start + size]


@events_app.command("replay")
def replay(
    file: Path,
    url: Annotated[str, URL] = "http://127.0.0.1:3000",
    kinesis: Annotated[str | None, typer.Option(
        "--kinesis", help="Put the events on this Kinesis stream (the stack's EventsStream) instead of POSTing them; "
        "uses your AWS credentials and region")] = None,
    jsonl: Annotated[Path | None, typer.Option(
        "--jsonl", help="Append the events to this JSON Lines file, as the stream's records carry them")] = None,
) -> None:
    """POST the events of FILE (JSON Lines, JSON array, CSV or Parquet) in batches of 500; replays are no-ops.

    With --kinesis or --jsonl every event is checked first and nothing is sent unless all are valid; the stream's
    consumer drops events whose id it has seen, so replaying the same file is harmless there too.
    """
    if kinesis is not None and jsonl is not None:
        fail("choose one destination: --kinesis or --jsonl")
    events = [with_event_id(_numbers(r)) if isinstance(r, dict) else r for r in read_records(file)]
    if kinesis is not None or jsonl is not None:
        _put_on_sink(events, kinesis, jsonl)
        return
    from tastebud_cli.api_client import ApiClient, ApiError

    client = ApiClient(url)
    totals = {"accepted": 0, "duplicates": 0, "failed": 0}
    failures: list[dict[str, Any]] = []
    try:
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("events", total=len(events))
            for offset, batch in enumerate(_batches(events, BATCH)):
                try:
                    result = client.post_events(batch)
                except ApiError as exc:
                    fail(f"batch starting at record {offset * BATCH}: {exc}")
                totals["accepted"] += result["accepted"]
                totals["duplicates"] += result["duplicates"]
                totals["failed"] += len(result["failures"])
                failures += [{**f, "index": f["index"] + offset * BATCH} for f in result["failures"]]
                progress.advance(task, len(batch))
    except OSError as exc:
        fail(f"cannot reach {url}: {exc} (is `tastebud serve` running?)")
    finally:
        client.close()
    _print_failures(failures)
    out.print_json(json.dumps({**totals, "records": len(events)}))
    if failures:
        raise typer.Exit(1)


def _print_failures(failures: list[dict[str, Any]]) -> None:
    for failure in failures[:20]:
        err.print(f"record {failure['index']} ({failure['event_id']}): {failure['field']}: {failure['message']}",
                  highlight=False)
    if len(failures) > 20:
        err.print(f"... and {len(failures) - 20} more", highlight=False)


def _put_on_sink(records: list[Any], stream: str | None, path: Path | None) -> None:
    """Validate every record with the event codec (the stream's consumer parses the same way), then put them all
    on the Kinesis stream or the file; nothing is sent when a record is invalid."""
    import time

    from tastebud.adapters.local_events import JsonlEventSink
    from tastebud.domain import InteractionEvent
    from tastebud.errors import BadRequestError, DependencyError
    from tastebud.event_codec import parse_event

    now = time.time()
    events: list[InteractionEvent] = []
    failures: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        try:
            events.append(parse_event(record, now=now, require_event_id=True))
        except BadRequestError as exc:
            event_id = record.get("event_id") if isinstance(record, dict) else None
            failures.append({"index": index, "event_id": event_id, "field": exc.field or "body",
                             "message": exc.message})
    if failures:
        _print_failures(failures)
        fail(f"{len(failures)} of {len(records)} records are invalid; nothing was sent")
    if stream is not None:
        import boto3

        from tastebud.adapters.aws.kinesis_events import MAX_RECORDS, KinesisEventSink

        sink: Any = KinesisEventSink(stream, client=boto3.client("kinesis"))  # the default credential chain
        batch, destination = MAX_RECORDS, f"kinesis:{stream}"
    else:
        assert path is not None
        sink, batch, destination = JsonlEventSink(path), BATCH, str(path)
    sent = 0
    try:
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task(destination, total=len(events))
            for start in range(0, len(events), batch):
                chunk = events[start:start + batch]
                sink.put(chunk)
                sent += len(chunk)
                progress.advance(task, len(chunk))
    except (DependencyError, OSError) as exc:
        fail(f"{destination}: {sent} of {len(events)} events sent, then: {exc}")
    out.print_json(json.dumps({"sent": sent, "records": len(records), "destination": destination}))


@catalog_app.command("upsert")
def upsert(file: Path, url: Annotated[str, URL] = "http://127.0.0.1:3000") -> None:
    """PUT each item of FILE (the items columns; CSV, JSON Lines, JSON array or Parquet) to the running server."""
    from tastebud_cli.api_client import ApiClient, ApiError

    columns = ("merchant_id", "title", "category", "description", "price", "image_uri")
    items = read_records(file)
    client = ApiClient(url)
    done, failed = 0, 0
    try:
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("items", total=len(items))
            for number, record in enumerate(items, start=1):
                record = _numbers(record) if isinstance(record, dict) else {}
                item_id = str(record.get("item_id", "")).strip()
                if not item_id:
                    err.print(f"{file}, record {number}: item_id is missing", highlight=False)
                    failed += 1
                    continue
                try:
                    client.put_item(item_id, {c: record[c] for c in columns if c in record})
                    done += 1
                except ApiError as exc:
                    err.print(f"{file}, record {number} ({item_id}): {exc}", highlight=False)
                    failed += 1
                progress.advance(task)
    except OSError as exc:
        fail(f"cannot reach {url}: {exc} (is `tastebud serve` running?)")
    finally:
        client.close()
    out.print_json(json.dumps({"upserted": done, "failed": failed}))
    if failed:
        raise typer.Exit(1)


ARTIFACTS = typer.Option("--artifacts", help="Artifacts directory built by `tastebud train`")


@versions_app.command("list")
def list_versions(artifacts: Annotated[Path, ARTIFACTS], as_json: Annotated[bool, typer.Option("--json")] = False,
                  ) -> None:
    """Published versions, oldest first; the live one (CURRENT) is marked."""
    import time

    from tastebud.artifacts import LocalArtifactStore
    from tastebud.errors import TastebudError

    store = LocalArtifactStore(artifacts)
    try:
        current = store.current_version()
    except TastebudError as exc:
        fail(str(exc))
    manifests = store.list_versions()
    rows: list[dict[str, Any]] = [{"version": m.version, "current": m.version == current, "created": time.strftime(
        "%Y-%m-%d %H:%M:%S", time.gmtime(m.created_at)), "model_version": m.model_version,
        "index_version": m.index_version, "items": m.data.get("items"), "interactions": m.data.get("interactions")}
        for m in manifests]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"versions in {artifacts}")
    for column in ("", "version", "created (UTC)", "model", "index", "items", "interactions"):
        table.add_column(column)
    for r in rows:
        table.add_row("*" if r["current"] else "", r["version"], r["created"], r["model_version"], r["index_version"],
                      str(r["items"]), str(r["interactions"]))
    out.print(table)


@versions_app.command("rollback")
def rollback(artifacts: Annotated[Path, ARTIFACTS],
             to: Annotated[str | None, typer.Option("--to", help="Version to serve; default: the one before")] = None,
             ) -> None:
    """Point CURRENT at an earlier version; a running `tastebud serve` swaps to it within its watch interval."""
    from tastebud.artifacts import LocalArtifactStore
    from tastebud.errors import TastebudError

    store = LocalArtifactStore(artifacts)
    try:
        current = store.current_version()
        names = [m.version for m in store.list_versions()]
        if to is None:
            if current not in names or names.index(current) == 0:
                fail(f"no version before {current} to roll back to (versions: {', '.join(names) or 'none'})")
            to = names[names.index(current) - 1]
        store.set_current(to)
    except TastebudError as exc:
        fail(str(exc))
    out.print_json(json.dumps({"previous": current, "current": to}))
