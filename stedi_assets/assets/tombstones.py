"""The tombstones in force, and how a frame's rows are matched against them (hashed in the driver)."""

from dataclasses import dataclass, field

import pyarrow as pa
from dagster import Failure
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets.resources.lake import Lake
from stedi_assets.tables import CUSTOMER_ERASURE, STEP_TRAINER_LANDING, ZoneTable
from stedi_assets.transforms.erased_rows import (
    ERASED,
    ERASED_DEVICES_SCHEMA,
    ERASED_IDENTITIES_SCHEMA,
    ERASED_SUBJECTS_SCHEMA,
    SERIAL,
    identity_candidates,
    mark_erased,
    raw_email_candidates,
    serial_candidates,
)
from stedi_assets.transforms.identity import IDENTITY_KEY, identity_of
from stedi_assets.transforms.pseudonyms import SUBJECT_KEY, key_fingerprint, subject_keys, tombstone

IDENTITY, DEVICE, SUBJECT = "identity", "device", "subject"


@dataclass(frozen=True)
class Tombstones:
    """The tombstones in force: what the table at `version` holds (version -1: none yet)."""

    version: int
    identities: frozenset[str] = frozenset()
    devices: dict[str, list[tuple[int | None, int | None]]] = field(default_factory=dict)
    subjects: frozenset[str] = frozenset()  # hashes of their subject keys (the training table's pseudonyms)

    @classmethod
    def load(cls, lake: Lake, key: bytes) -> "Tombstones":
        """The current tombstones; fails in one line if they were made with another key (they could not match)."""
        delta = lake.store.delta(CUSTOMER_ERASURE)
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
        subjects = frozenset(row["tombstone"] for row in rows if row["kind"] == SUBJECT)
        return cls(table.version(), identities, devices, subjects)

    @property
    def empty(self) -> bool:
        """No one is erased."""
        return not (self.identities or self.devices or self.subjects)

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

    def subjects_in(self, session: SparkSession, frame: DataFrame, key: bytes) -> DataFrame:
        """The erased subject keys among those the frame's `subject_key` column holds (hashed here, in the driver)."""
        named = (
            [row[SUBJECT_KEY] for row in frame.select(SUBJECT_KEY).distinct().collect()]
            if self.subjects and SUBJECT_KEY in frame.columns
            else []
        )
        erased = sorted(s for s in named if s is not None and tombstone(s, key, SUBJECT) in self.subjects)
        return session.createDataFrame([(s,) for s in erased], ERASED_SUBJECTS_SCHEMA)

    def names_anyone_in(self, line: str, key: bytes) -> bool:
        """Whether a line of text (of a file no parser can read) spells an erased customer's e-mail anywhere,
        as the raw-line matching in Spark would find it (transforms/erased_rows.py)."""
        candidates = raw_email_candidates(line)
        return any(tombstone(identity_of(c), key, IDENTITY) in self.identities for c in candidates)

    def mark(self, session: SparkSession, frame: DataFrame, key: bytes, table: ZoneTable) -> DataFrame:
        """The frame (rows of `table`) with `_erased` true on the rows of erased customers (see
        transforms/erased_rows.py)."""
        if self.empty:  # matching costs joins over every row, raw lines included
            return frame.withColumn(ERASED, F.lit(False))
        return mark_erased(
            frame,
            self.identities_in(session, frame, key),
            self.devices_in(session, frame, key),
            self.subjects_in(session, frame, key),
            raw_readings=table.entity == STEP_TRAINER_LANDING.entity,
        )


# A row of customer_erasure: kind, tombstone, claimed from and until (devices), requested at, recorded at, key.
TombstoneRow = tuple[str, str, int | None, int | None, int | None, int, str]


def tombstone_rows(
    requests: dict[str, int | None], claims: list[tuple[str, int | None, int | None]], key: bytes, now: int
) -> list[TombstoneRow]:
    """The rows to record: one per customer, one per device holding of theirs; values hashed, times kept."""
    fingerprint = key_fingerprint(key)
    rows: list[TombstoneRow] = [
        (IDENTITY, tombstone(i, key, IDENTITY), None, None, at, now, fingerprint) for i, at in requests.items()
    ]
    subjects = subject_keys(requests, key)
    rows += [
        (SUBJECT, tombstone(subjects[i], key, SUBJECT), None, None, at, now, fingerprint) for i, at in requests.items()
    ]
    rows += [(DEVICE, tombstone(s, key, DEVICE), start, end, None, now, fingerprint) for s, start, end in claims]
    return sorted(set(rows))
