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
from dataclasses import dataclass, field

import pyarrow as pa
from dagster import AssetCheckResult, AssetExecutionContext, Failure, MaterializeResult, multi_asset
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets.assets.accounting import Output, cached, measure, publish, unchanged
from stedi_assets.assets.specs import table_spec, zone_check_specs
from stedi_assets.resources.lake import Lake
from stedi_assets.resources.privacy import Privacy
from stedi_assets.resources.spark import Spark
from stedi_assets.tables import CUSTOMER_ERASURE, CUSTOMER_LANDING
from stedi_assets.transforms import classify as r
from stedi_assets.transforms.customers import device_claims
from stedi_assets.transforms.erasure import (
    ERASED_DEVICES_SCHEMA,
    ERASED_IDENTITIES_SCHEMA,
    ERASED_SUBJECTS_SCHEMA,
    SERIAL,
    identity_candidates,
    serial_candidates,
)
from stedi_assets.transforms.identity import IDENTITY_KEY, identity_key, identity_of
from stedi_assets.transforms.pseudonyms import key_fingerprint, subject_keys, tombstone

IDENTITY, DEVICE = "identity", "device"


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


@dataclass(frozen=True)
class Tombstones:
    """The tombstones in force: what the table at `version` holds (version -1: none yet)."""

    version: int
    identities: frozenset[str] = frozenset()
    devices: dict[str, list[tuple[int | None, int | None]]] = field(default_factory=dict)

    @classmethod
    def load(cls, lake: Lake, key: bytes) -> "Tombstones":
        """The current tombstones; fails in one line if they were made with another key (they could not match)."""
        delta = lake.delta(CUSTOMER_ERASURE)
        table = delta.open()
        if table is None:
            return cls(-1)
        rows = pa.table(table.to_pyarrow_table()).to_pylist()
        fingerprints = {row["key_fingerprint"] for row in rows}
        if fingerprints - {key_fingerprint(key)}:
            raise Failure(
                "the erasure tombstones were made with another pseudonym key: with this key they match nobody,"
                " so erased customers would come back; use the key they were made with (STEDI_PSEUDONYM_KEY)"
            )
        devices: dict[str, list[tuple[int | None, int | None]]] = {}
        for row in rows:
            if row["kind"] == DEVICE:
                devices.setdefault(row["tombstone"], []).append((row["claimed_from"], row["claimed_until"]))
        identities = frozenset(row["tombstone"] for row in rows if row["kind"] == IDENTITY)
        return cls(table.version(), identities, devices)

    def identities_in(self, session: SparkSession, frame: DataFrame, key: bytes) -> DataFrame:
        """The erased identity keys among those the frame names, as a small frame (hashed here, in the driver)."""
        if not self.identities:
            return session.createDataFrame([], ERASED_IDENTITIES_SCHEMA)
        named = [row[IDENTITY_KEY] for row in identity_candidates(frame).collect()]
        erased = sorted(i for i in named if tombstone(i, key, IDENTITY) in self.identities)
        return session.createDataFrame([(i,) for i in erased], ERASED_IDENTITIES_SCHEMA)

    def devices_in(self, session: SparkSession, frame: DataFrame, key: bytes) -> DataFrame:
        """Serial and holding time of the erased customers' devices among those the frame names."""
        if not self.devices:
            return session.createDataFrame([], ERASED_DEVICES_SCHEMA)
        held = []
        for row in serial_candidates(frame).collect():
            for start, end in self.devices.get(tombstone(row[SERIAL], key, DEVICE), []):
                held.append((row[SERIAL], start, end))
        return session.createDataFrame(held, ERASED_DEVICES_SCHEMA)

    def subjects_of(self, session: SparkSession, identities: DataFrame, key: bytes) -> DataFrame:
        """The subject keys (training-table pseudonyms) of erased identities."""
        keys = subject_keys([row[IDENTITY_KEY] for row in identities.collect()], key)
        return session.createDataFrame([(k,) for k in sorted(keys.values())], ERASED_SUBJECTS_SCHEMA)


def request_lines(lake: Lake) -> tuple[list[str], list[tuple[str, int, str]]]:
    """The request files delivered, and their lines (small files: read in the driver)."""
    files = [f.uri for f in lake.landing_files(CUSTOMER_ERASURE)]
    lines = [
        (uri, number, text)
        for uri in files
        for number, text in enumerate(lake.storage.read_bytes(uri).decode("utf-8", "replace").splitlines(), 1)
    ]
    return files, lines


def tombstone_rows(
    requests: dict[str, int | None], claims: list[tuple[str, int | None, int | None]], key: bytes, now: int
) -> list[tuple]:
    """The rows to record: one per customer, one per device holding of theirs; values hashed, times kept."""
    fingerprint = key_fingerprint(key)
    rows = [(IDENTITY, tombstone(i, key, IDENTITY), None, None, at, now, fingerprint) for i, at in requests.items()]
    rows += [(DEVICE, tombstone(s, key, DEVICE), start, end, None, now, fingerprint) for s, start, end in claims]
    return sorted(set(rows))


@multi_asset(specs=[table_spec(CUSTOMER_ERASURE)], check_specs=zone_check_specs(CUSTOMER_ERASURE))
def customer_erasure(
    context: AssetExecutionContext, lake: Lake, spark: Spark, privacy: Privacy
) -> Iterator[MaterializeResult | AssetCheckResult]:
    with lake.exclusive(CUSTOMER_ERASURE):
        key = privacy.key_bytes
        files, lines = request_lines(lake)
        try:
            requests = parse_requests(lines)
        except RequestError as error:
            raise Failure(str(error)) from None
        current = Tombstones.load(lake, key)
        new = {i: at for i, at in requests.items() if tombstone(i, key, IDENTITY) not in current.identities}
        base = lake.snapshot(CUSTOMER_ERASURE)
        if not new and base is not None:
            yield from unchanged(lake, CUSTOMER_ERASURE, "no new erasure request")
            for uri in files:  # requests already honoured, delivered again
                lake.storage.delete(uri)
            return
        session = spark.session
        claims: list[tuple[str, int | None, int | None]] = []
        if new and lake.exists(CUSTOMER_LANDING):
            erased = session.createDataFrame([(i,) for i in sorted(new)], ERASED_IDENTITIES_SCHEMA)
            records = lake.read(session, CUSTOMER_LANDING)
            theirs = records.join(F.broadcast(erased), identity_key("email") == erased[IDENTITY_KEY], "left_semi")
            claims = [(r[SERIAL], r["claimed_from"], r["claimed_until"]) for r in device_claims(theirs).collect()]
        rows = tombstone_rows(new, claims, key, privacy.as_of)
        frame = session.createDataFrame(rows, CUSTOMER_ERASURE.schema).withColumn(r.REASON, F.lit(None).cast("string"))
        classified = frame.withColumn(r.DETAIL, F.lit(None).cast("string"))
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
                    "request_files_deleted": len(files),
                },
            )
        # The tombstones are committed: the requests (e-mails) go.
        for uri in files:
            lake.storage.delete(uri)
