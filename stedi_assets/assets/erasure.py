"""Erasure: requests dropped under `customer/erasure/` become tombstones, then every table loses the customer.

A request line is `{"email": ..., "requestedAt": ...}`. The run keeps only keyed hashes (tombstones) of the
customer's identity key and of the devices they held (serial and when), commits them, and deletes the request
files: no e-mail stays in the lake. Every other asset then removes the rows the tombstones match (landing tables
rewrite the raw files without them), and a table whose rows were erased vacuums every older version. Tombstones
are matched by hashing the identities and serials a table names in the driver, so no erased value is ever a
literal in a Spark plan.
"""

import json
from collections.abc import Iterable, Iterator
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from pyspark.sql import functions as F

from stedi_assets import reasons
from stedi_assets.assets.accounting import cached, measure
from stedi_assets.assets.publishing import Output, erasure_version_of, publish, unchanged
from stedi_assets.assets.specs import OWNERS, table_spec, zone_check_specs
from stedi_assets.assets.tombstones import IDENTITY, Tombstones, tombstone_rows
from stedi_assets.lake.ledger import BLANKING_PENDING
from stedi_assets.lake.review import undecidable_lines
from stedi_assets.lake.storage import FileInfo, NotAFileError, SymlinkError
from stedi_assets.resources.lake import Lake
from stedi_assets.resources.privacy import Privacy
from stedi_assets.resources.spark import Spark
from stedi_assets.tables import (
    ALL_TABLES,
    CUSTOMER_CURATED,
    CUSTOMER_ERASURE,
    CUSTOMER_LANDING,
    MACHINE_LEARNING_CURATED,
)
from stedi_assets.transforms.customers import device_claims
from stedi_assets.transforms.erased_rows import ERASED_IDENTITIES_SCHEMA, SERIAL, erased_holdings
from stedi_assets.transforms.identity import identity_of
from stedi_assets.transforms.pseudonyms import tombstone


class RequestError(ValueError):
    """An erasure request file holds a line that is not a request."""


def parse_requests(lines: Iterable[tuple[str, int, str]]) -> dict[str, int | None]:
    """Identity key -> when it was requested (the earliest), from (file, line number, text) lines.

    Blank lines are skipped; any other line that is not a JSON object with a non-empty string `email` (and an
    optional whole-number `requestedAt`) fails the whole batch, naming the file and line but not the content.
    """
    requests: dict[str, int | None] = {}
    for source, number, text in lines:
        if not text.strip():
            continue
        try:
            request = json.loads(text.lstrip("\ufeff"))
            email, at = request["email"], request.get("requestedAt")
            if not isinstance(email, str) or not identity_of(email) or not (at is None or type(at) is int):
                raise TypeError
        except (ValueError, TypeError, KeyError, AttributeError):
            raise RequestError(
                f'{source} line {number} is not an erasure request ({{"email": ..., "requestedAt": epoch ms}});'
                " nothing was erased: correct or remove the line"
            ) from None
        identity = identity_of(email)
        earlier = requests.get(identity)
        requests[identity] = at if earlier is None else min(earlier, at) if at is not None else earlier
    return requests


def request_lines(lake: Lake) -> tuple[list[FileInfo], list[tuple[str, int, str]]]:
    """The request files delivered (as listed: their fingerprints say whether they changed since), and their lines
    (small files: read in the driver). A line that is not UTF-8 fails the run, naming file and line: decoded with
    replacement characters, it would match no one, and the request would be deleted unhonoured."""
    files = lake.store.landing_files(CUSTOMER_ERASURE)
    return files, [line for info in files for line in _lines_of(lake, info)]


def _lines_of(lake: Lake, info: FileInfo) -> list[tuple[str, int, str]]:
    try:
        data = lake.store.storage.read_bytes(info.uri)
    except NotAFileError as error:
        raise RequestError(
            f"{info.uri} is {error.description}, not a request file; nothing was erased: remove it"
        ) from None
    except SymlinkError:
        raise RequestError(
            f"{info.uri} is a symbolic link, which the lake never follows; nothing was erased: replace it by the file"
        ) from None
    lines = []
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            lines.append((info.uri, number, raw.decode("utf-8")))
        except UnicodeDecodeError:
            raise RequestError(
                f"{info.uri} line {number} is not UTF-8 text; nothing was erased: save the file as UTF-8"
            ) from None
    return lines


def honoured_request_files(lake: Lake, tombstones: Tombstones, key: bytes) -> list[FileInfo]:
    """The request files (as read now) every request of which the tombstones hold. A file that is not all
    requests is never one: customer_erasure fails on it, naming it."""
    honoured = []
    for info in lake.store.landing_files(CUSTOMER_ERASURE):
        try:
            requests = parse_requests(_lines_of(lake, info))
        except (RequestError, FileNotFoundError):
            continue
        if all(tombstone(identity, key, IDENTITY) in tombstones.identities for identity in requests):
            honoured.append(info)
    return honoured


def delete_requests(lake: Lake, files: list[FileInfo]) -> int:
    """Deletes the request files that are as they were read; one rewritten or appended to since (its fingerprint
    changed) stays for the next run, which reads it again. Returns how many were deleted. Called only once the
    receipt of the tombstones that honour them is written: a run that fails before never loses a request."""
    deleted = 0
    for info in files:
        now = lake.store.storage.stat(info.uri)
        if now is not None and now.fingerprint == info.fingerprint:
            lake.store.storage.delete(info.uri)
            deleted += 1
    return deleted


@multi_asset(specs=[table_spec(CUSTOMER_ERASURE)], check_specs=zone_check_specs(CUSTOMER_ERASURE))
def customer_erasure(
    context: AssetExecutionContext, lake: Lake, spark: Spark, privacy: Privacy
) -> Iterator[MaterializeResult | AssetCheckResult]:
    with lake.store.exclusive(CUSTOMER_ERASURE):
        key = privacy.key_bytes
        try:
            files, lines = request_lines(lake)
            requests = parse_requests(lines)
        except RequestError as error:
            raise Failure(str(error)) from None
        current = Tombstones.load(lake, key)
        new = {i: at for i, at in requests.items() if tombstone(i, key, IDENTITY) not in current.identities}
        base = lake.store.snapshot(CUSTOMER_ERASURE)
        if not new and base is not None:
            yield from unchanged(lake, CUSTOMER_ERASURE, "no new erasure request")
            return
        session = spark.session
        claims: list[tuple[str, int | None, int | None]] = []
        if new and lake.store.exists(CUSTOMER_LANDING):
            erased = session.createDataFrame([(i,) for i in sorted(new)], ERASED_IDENTITIES_SCHEMA)
            holdings = erased_holdings(device_claims(lake.store.read(session, CUSTOMER_LANDING)), erased)
            claims = [(r[SERIAL], r["claimed_from"], r["claimed_until"]) for r in holdings.collect()]
        rows = tombstone_rows(new, claims, key, privacy.as_of)
        frame = session.createDataFrame(rows, CUSTOMER_ERASURE.schema).withColumn(
            reasons.REASON, F.lit(None).cast("string")
        )
        classified = frame.withColumn(reasons.DETAIL, F.lit(None).cast("string"))
        with cached(classified) as classified:
            measured = measure(CUSTOMER_ERASURE, classified, rows_in=len(new), pairing=True)
            yield from publish(
                context,
                lake,
                CUSTOMER_ERASURE,
                measured,
                Output(classified.select(*CUSTOMER_ERASURE.columns), base, None if base is None else []),
                metadata={
                    "requests": len(requests),
                    "customers_newly_erased": len(new),
                    "device_holdings_newly_erased": len(claims),
                    "request_files_read": len(files),  # deleted once the receipt is written (erasure_receipts)
                },
            )


RECEIPTS = "customer/erasure_receipts"


def receipt(lake: Lake, tombstones_version: int, run_id: str, now: int) -> tuple[dict, list[str]]:
    """What each table did about the erasures up to `tombstones_version`, from the tables' own commits; and the
    tables still pending (not yet recomputed against them)."""
    tables, pending, files_pending = {}, [], []
    for table in ALL_TABLES.values():
        snapshot = lake.store.snapshot(table)
        if snapshot is None or table is CUSTOMER_ERASURE:
            continue
        if erasure_version_of(snapshot) != tombstones_version:
            pending.append(table.name)
        tables[table.name] = {
            "version": snapshot.version,
            "rows_erased": int(snapshot.metadata.get("stedi.rows_erased", 0)),
            # A table recomputed against new tombstones vacuums every older version: only this one is readable.
            "only_readable_version": snapshot.version,
        }
        files_pending += json.loads(snapshot.metadata.get(f"stedi.{BLANKING_PENDING}", "[]"))
    content = {
        "erasure_version": tombstones_version,
        "written_at": now,
        "run_id": run_id,
        "tables": tables,
        # Raw files whose erased lines could not be blanked yet (path only): every later run retries them.
        "raw_files_pending_blanking": sorted(files_pending),
        # Quarantined lines the search cannot read well enough to tell (counted only): see `stedi review`.
        "undecidable_lines": sum(1 for _ in undecidable_lines(lake.store)),
    }
    return content, pending


@asset(
    # Last in every run that erases: every table is upstream of the two curated ones (test_definitions proves it),
    # so two edges order it after all of them, where an edge from each table would hide the data's path.
    deps=[CUSTOMER_CURATED.name, MACHINE_LEARNING_CURATED.name],
    group_name=MACHINE_LEARNING_CURATED.zone.value,  # drawn at the end of the data's path, where it runs
    kinds={"json"},
    owners=OWNERS,
    description=f"An erasure receipt per batch of erasure requests, at `{{root}}/{RECEIPTS}/`: when, and for every"
    " table its version, the rows it lost and that no older version stays readable. Names no one.",
)
def erasure_receipts(context: AssetExecutionContext, lake: Lake, privacy: Privacy) -> MaterializeResult:
    tombstones = lake.store.snapshot(CUSTOMER_ERASURE)
    if tombstones is None or (tombstones.version == 0 and not tombstones.rows):
        return MaterializeResult(metadata={"receipt": "no erasure yet"})
    path = f"{lake.store.uri}/{RECEIPTS}/erasure-{tombstones.version:06d}.json"
    metadata: dict[str, Any] = {"receipt": path, "written": False}
    if lake.store.storage.stat(path) is None:
        content, pending = receipt(lake, tombstones.version, context.run.run_id, privacy.as_of)
        if pending:  # the requests stay until a run has erased them everywhere
            return MaterializeResult(metadata={"receipt": "pending", "tables_pending": MetadataValue.json(pending)})
        lake.store.storage.write_bytes(path, (json.dumps(content, indent=2, sort_keys=True) + "\n").encode())
        rows = {name: entry["rows_erased"] for name, entry in content["tables"].items()}
        metadata |= {"written": True, "rows_erased": MetadataValue.json(rows)}
        metadata["raw_files_pending_blanking"] = len(content["raw_files_pending_blanking"])
        metadata["undecidable_lines"] = content["undecidable_lines"]
    # The receipt is written: the requests (e-mails) it honours go, those delivered again included.
    key = privacy.key_bytes
    metadata["request_files_deleted"] = delete_requests(
        lake, honoured_request_files(lake, Tombstones.load(lake, key), key)
    )
    return MaterializeResult(metadata=metadata)
