"""Row accounting and publishing, shared by every zone asset.

Every input row is either output, filtered (with a reason) or quarantined (with a reason). One aggregation
over the cached classified frame counts the rows by reason and the contract's failing rows (of the rows kept
and of the rows quarantined), and the run fails if the rows do not balance. Then, if no blocking rule failed,
the quarantine and the table are committed (quarantine first: a run killed in between leaves the table as it
was, and the rerun replaces the same quarantine rows), and the asset reports both and their checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
)
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets import reasons
from stedi_assets.assets.tombstones import Tombstones
from stedi_assets.checks import contract_result, rule_counts, schema_errors
from stedi_assets.lake.changes import Changes
from stedi_assets.lake.delta import Snapshot
from stedi_assets.lake.store import LEAVING
from stedi_assets.resources.lake import Lake
from stedi_assets.tables import ALL_TABLES, CUSTOMER_ERASURE, QUARANTINE_OF, ZoneTable
from stedi_assets.transforms.classify import kept
from stedi_assets.transforms.erasure import ERASED, SERIAL, identity_candidates, serial_candidates
from stedi_assets.transforms.identity import IDENTITY_KEY


class RowsLostError(RuntimeError):
    """Rows in and rows accounted for disagree: a transform dropped or invented rows, or gave an undeclared reason."""


@dataclass(frozen=True)
class RowAccount:
    rows_in: int
    rows_out: int
    filtered: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    # Rows a one-to-many pairing adds (machine_learning_curated only); zero everywhere else.
    rows_added_by_pairing: int = 0

    @property
    def balanced(self) -> bool:
        accounted = self.rows_out + sum(self.filtered.values()) + sum(self.quarantined.values())
        return self.rows_in + self.rows_added_by_pairing == accounted

    def metadata(self) -> dict[str, object]:
        meta: dict[str, object] = {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_filtered": sum(self.filtered.values()),
            "rows_quarantined": sum(self.quarantined.values()),
            "filtered_by_reason": MetadataValue.json(dict(sorted(self.filtered.items()))),
            "quarantined_by_reason": MetadataValue.json(dict(sorted(self.quarantined.items()))),
        }
        if self.rows_added_by_pairing:
            meta["rows_added_by_pairing"] = self.rows_added_by_pairing
        return meta


@dataclass(frozen=True)
class Measured:
    account: RowAccount
    kept_rules: dict[str, int]
    quarantine_rules: dict[str, int]


@contextmanager
def cached(frame: DataFrame) -> Iterator[DataFrame]:
    """The frame cached while the block runs (counting and writing read it more than once), then released.

    On local disk, not in the JVM's heap: a heap cache fills the default 1 GB heap at scale (55 million landing
    lines ran out of memory while caching a feed's parse), and reading the disk copy back, which the operating
    system keeps in its page cache anyway, measured no slower here.
    """
    frame = frame.persist(StorageLevel.DISK_ONLY)
    try:
        yield frame
    finally:
        frame.unpersist()


def measure(table: ZoneTable, classified: DataFrame, rows_in: int | None = None, pairing: bool = False) -> Measured:
    """Counts a (cached) classified frame by reason, and the contract's failing rows, in one aggregation.

    `rows_in` is counted independently from the input where the classification could change the row count;
    only a pairing may add rows.
    """
    reason = F.col(reasons.REASON)
    quarantine = QUARANTINE_OF.get(table.name)
    present = set(classified.columns)
    aggregates = {"_total": F.count(F.lit(1)), "_kept": F.sum(F.when(reason.isNull(), 1).otherwise(0))}
    aggregates |= {f"reason:{name}": F.sum(F.when(reason == name, 1).otherwise(0)) for name in sorted(table.reasons)}
    kept_rules = rule_counts(table.model, present, reason.isNull())
    aggregates |= {f"kept:{name}": value for name, value in kept_rules.items()}
    if quarantine is not None:
        quarantined = reason.isin(*sorted(table.reasons & reasons.QUARANTINE_REASONS))
        rules = rule_counts(quarantine.model, present & set(quarantine.columns), quarantined)
        aggregates |= {f"quarantine:{name}": value for name, value in rules.items()}
    row = {
        k: int(v or 0) for k, v in classified.agg(*(v.alias(k) for k, v in aggregates.items())).first().asDict().items()
    }

    by_reason = {name: row[f"reason:{name}"] for name in sorted(table.reasons) if row[f"reason:{name}"]}
    undeclared = row["_total"] - row["_kept"] - sum(by_reason.values())
    if undeclared:
        raise RowsLostError(f"{table.name}: {undeclared} rows carry a reason not declared for the table in tables.py")
    total = row["_total"]
    rows_in = total if rows_in is None else rows_in
    account = RowAccount(
        rows_in=rows_in,
        rows_out=row["_kept"],
        filtered={k: v for k, v in by_reason.items() if k not in reasons.QUARANTINE_REASONS},
        quarantined={k: v for k, v in by_reason.items() if k in reasons.QUARANTINE_REASONS},
        rows_added_by_pairing=total - rows_in if pairing else 0,
    )
    if not account.balanced or account.rows_added_by_pairing < 0:
        raise RowsLostError(f"{table.name}: rows do not balance: {account}")
    return Measured(
        account,
        {k.removeprefix("kept:"): v for k, v in row.items() if k.startswith("kept:")},
        {k.removeprefix("quarantine:"): v for k, v in row.items() if k.startswith("quarantine:")},
    )


def quarantine_rows(table: ZoneTable, classified: DataFrame, run_id: str) -> DataFrame:
    """The rejected rows of a classified frame, as its quarantine table's rows."""
    quarantine = QUARANTINE_OF[table.name]
    return (
        classified.where(F.col(reasons.REASON).isin(*sorted(table.reasons & reasons.QUARANTINE_REASONS)))
        .withColumn("rejected_by", F.lit(table.name))
        .withColumn("run_id", F.lit(run_id))
        .select(*quarantine.columns)
    )


@dataclass(frozen=True)
class Output:
    """A table's new rows and how they enter it, after `base` (the version this run read): `replaced` files
    leave the table (None: the whole table is replaced); `commit_metadata` goes into the commit only."""

    frame: DataFrame
    base: Snapshot | None
    replaced: list[str] | None = None
    commit_metadata: dict[str, object] = field(default_factory=dict)
    rows_erased: int = 0  # rows of erased customers the previous version held and this one leaves out
    changes: Changes | None = None  # the keys this commit changes (None: all), for downstream tables


def publish(
    context: AssetExecutionContext,
    lake: Lake,
    table: ZoneTable,
    measured: Measured,
    output: Output,
    quarantine_output: Output | None = None,
    metadata: dict[str, object] | None = None,
    checks: Sequence[AssetCheckResult] = (),
    erasure_version: int = -1,
    purge: bool = False,
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Checks the contract, then commits the quarantine (if any) and the table, reporting both and the checks.

    After each commit, versions older than the lake's retention are vacuumed; every older version is, when the
    table's rows were computed against newer erasure tombstones than its previous version (an erasure reaches
    every readable version), or when `purge` says so (a withdrawal leaving the training table).
    """
    account = measured.account
    if account.rows_in:
        context.log.info(f"{table.name}: {account}")
    results = [contract_result(table, schema_errors(table.model, output.frame), measured.kept_rules)]
    quarantine = QUARANTINE_OF.get(table.name)
    if quarantine is not None:
        results.append(contract_result(quarantine, [], measured.quarantine_rules))
    yield from checks
    yield from results
    blocking = [result for result in results if not result.passed and result.severity is AssetCheckSeverity.ERROR]
    if blocking:
        raise Failure(
            f"{table.name} breaks its contract ({blocking[0].metadata['failed_checks'].value} rules); nothing was"
            " committed and downstream assets are skipped"
        )
    # The commit records the same facts as plain values (MetadataValue wrappers are Dagster's).
    common = {
        **{k: getattr(v, "value", v) for k, v in (metadata or {}).items()},
        "run_id": context.run.run_id,
        "erasure_version": erasure_version,
    }
    if quarantine is not None and quarantine_output is not None:
        rows = sum(account.quarantined.values())
        committed = _commit(lake, quarantine, quarantine_output, common, erasure_version, purge)
        yield MaterializeResult(
            asset_key=quarantine.name,
            metadata={**committed, "rows_in": rows, "rows_out": rows, "rows_filtered": 0, "rows_quarantined": 0},
        )
    committed = _commit(lake, table, output, common, erasure_version, purge)
    yield MaterializeResult(asset_key=table.name, metadata={**committed, **account.metadata(), **(metadata or {})})


def erasure_version_of(snapshot: Snapshot | None) -> int:
    """The tombstones' version a table version was computed against (-1: none yet, or no table version)."""
    return -1 if snapshot is None else int(snapshot.metadata.get("stedi.erasure_version", -1))


def _commit(
    lake: Lake, table: ZoneTable, output: Output, common: dict, erasure_version: int, purge: bool
) -> dict[str, object]:
    """Commits one output and vacuums; returns what its materialization says about the table now."""
    purge = purge or (output.base is not None and erasure_version_of(output.base) != erasure_version)
    commit_metadata = {**output.commit_metadata, **common, "rows_erased": output.rows_erased}
    # A purge records no change set and forgets the earlier ones: they name the customers it erases.
    changes = None if purge else output.changes
    committed = lake.store.write(table, output.frame, output.base, output.replaced, commit_metadata, changes)
    vacuumed = lake.store.vacuum(table, 0 if purge else lake.retention_hours)
    if purge:
        lake.store.forget_changes(table)
    return {
        **_table_metadata(lake, table, committed),
        "rows_erased": output.rows_erased,
        "files_vacuumed": vacuumed,
        # After a purge only the new version can be read; otherwise older ones within the retention too.
        "older_versions_purged": purge,
    }


def unchanged(lake: Lake, table: ZoneTable, why: str) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Reports a table (and its quarantine) as it is: nothing to commit, and the checks its version passed."""
    for name in [table.name] + ([QUARANTINE_OF[table.name].name] if table.name in QUARANTINE_OF else []):
        current = ALL_TABLES[name]
        snapshot = lake.store.snapshot(current)
        assert snapshot is not None, f"{name} has no version to keep"
        yield AssetCheckResult(
            asset_key=name, check_name="contract", passed=True, metadata={"checked_with_version": snapshot.version}
        )
        yield MaterializeResult(
            asset_key=name,
            metadata={**_table_metadata(lake, current, snapshot), **RowAccount(0, 0).metadata(), "unchanged": why},
        )


def _table_metadata(lake: Lake, table: ZoneTable, committed: Snapshot) -> dict[str, object]:
    return {
        "dagster/row_count": committed.rows,
        "dagster/uri": lake.store.location(table),
        "table_version": committed.version,
    }


class Inputs:
    """What an asset's result depends on: the upstream tables, each at the version current when the asset
    started, and the settings that change the result (the consent policy, the pseudonym key's fingerprint)."""

    def __init__(
        self,
        lake: Lake,
        session: SparkSession,
        *tables: ZoneTable,
        key: bytes,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.lake, self.session, self.key = lake, session, key
        self.snapshots = {table.name: lake.store.snapshot(table) for table in tables}
        self.settings = settings or {}
        # Erasure tombstones count as an input: new ones change every table's result.
        self.tombstones = Tombstones.load(lake, key)

    def read(
        self, table: ZoneTable, merge: Merge | None = None, key_of: Callable[[DataFrame], Column] | None = None
    ) -> DataFrame:
        """An input at its version; for an incremental `merge`, only its rows whose key (`key_of`, by default the
        merge's own) is one of the merge's keys."""
        if merge is None:
            return self.lake.store.read(self.session, table, self.snapshots[table.name])
        return self.read_for(table, merge.keys, key_of or merge.row_key)

    def rows_in(self, table: ZoneTable, read: DataFrame, merge: Merge | None) -> int:
        """The rows an asset takes in from `table` (`read`: what it read of it): all of its version's, or, for an
        incremental `merge`, the rows read (counted)."""
        return self.rows(table) if merge is None else read.count()

    def rows(self, table: ZoneTable) -> int:
        """All the rows of an input's version."""
        snapshot = self.snapshots[table.name]
        return 0 if snapshot is None else snapshot.rows

    @property
    def versions(self) -> dict[str, object]:
        return {
            **{name: None if s is None else s.version for name, s in self.snapshots.items()},
            CUSTOMER_ERASURE.name: self.tombstones.version,
            **{f"setting:{name}": value for name, value in self.settings.items()},
        }

    def changes(self, base: Snapshot | None) -> Changes | None:
        """What changed in the inputs since `base` (the table's version) was computed from them; None: recompute
        everything (no version yet, a rebuild, another setting or new tombstones, an input rebuilt)."""
        if base is None or "stedi.inputs" not in base.metadata or self.lake.rebuild:
            return None
        recorded = json.loads(base.metadata["stedi.inputs"])
        current = self.versions
        if any(
            recorded.get(k) != v for k, v in current.items() if k.startswith("setting:") or k == CUSTOMER_ERASURE.name
        ):
            return None
        total = Changes()
        for name in self.snapshots:
            if recorded.get(name) == current[name]:
                continue
            found = self.lake.store.changes(ALL_TABLES[name], recorded.get(name), current[name])
            if found is None:
                return None
            total |= found
        return total

    def customer_merge(self, identities: Iterable[str], key_of: Callable[[DataFrame], Column]) -> Merge:
        """An incremental result for these customers: their rows (keyed by `key_of`) are replaced."""
        touched = Changes(identities=frozenset(identities))
        return Merge(self.keys(touched.identities), key_of, touched)

    def keys(self, values: Iterable[str]) -> DataFrame:
        """A small frame of keys (column `_key`), to slice inputs and outputs by."""
        return self.session.createDataFrame([(v,) for v in sorted(values)], "_key string")

    def read_for(self, table: ZoneTable, keys: DataFrame, key_of: Callable[[DataFrame], Column]) -> DataFrame:
        """The rows of an input whose key (`key_of(rows)`) is one of `keys`."""
        rows = self.read(table)
        return rows.join(F.broadcast(keys), key_of(rows) == keys["_key"], "left_semi")

    def erased_rows(self, table: ZoneTable, snapshot: Snapshot | None) -> int:
        """How many rows of a version belong to customers erased since (counted when they leave the table)."""
        if snapshot is None or not snapshot.rows:
            return 0
        frame = self.lake.store.read(self.session, table, snapshot)
        return self.tombstones.mark(self.session, frame, self.key).where(F.col(ERASED)).count()


def changed_keys(frame: DataFrame) -> Changes:
    """The customers and devices a frame's rows name (columns, and e-mails or serials in raw lines)."""
    identities = {row[IDENTITY_KEY] for row in identity_candidates(frame).collect()}
    serials = {row[SERIAL] for row in serial_candidates(frame).collect()}
    return Changes(frozenset(identities), frozenset(serials))


@dataclass(frozen=True)
class Merge:
    """An incremental result: it replaces, in the table, the rows whose key is one of `keys` (column `_key`)."""

    keys: DataFrame
    row_key: Callable[[DataFrame], Column]
    changes: Changes
    quarantine_key: Callable[[DataFrame], Column] | None = None


def merged_output(
    lake: Lake,
    session: SparkSession,
    table: ZoneTable,
    base: Snapshot | None,
    rows: DataFrame,
    keys: DataFrame,
    key_of: Callable[[DataFrame], Column],
) -> Output:
    """The table's rows whose key is in `keys` replaced by `rows`: the files holding them are rewritten."""
    if base is None:
        return Output(rows, base)
    hits = F.broadcast(keys.withColumn("_hit", F.lit(True)))

    def leaving(frame: DataFrame) -> DataFrame:
        keyed = frame.join(hits, key_of(frame) == hits["_key"], "left")
        return keyed.withColumn(LEAVING, F.coalesce(F.col("_hit"), F.lit(False))).drop("_key", "_hit")

    survivors, replaced = lake.store.survivors(session, table, base, leaving)
    return Output(rows.unionByName(survivors), base, replaced)


def rebuild(
    context: AssetExecutionContext,
    lake: Lake,
    table: ZoneTable,
    classified: DataFrame,
    inputs: Inputs,
    rows_in: int,
    pairing: bool = False,
    metadata: dict[str, object] | None = None,
    changed: bool = False,
    purge: Callable[[DataFrame], bool] | None = None,
    merge: Merge | None = None,
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Replaces a table (and its quarantine) with the kept (and rejected) rows of a classified frame, or with
    `merge`, only the rows of its keys; keeps it as it is when it was computed from the same input versions
    (and `changed` says nothing else changed)."""
    quarantine = QUARANTINE_OF.get(table.name)
    base = lake.store.snapshot(table)
    recorded = None if base is None else base.metadata.get("stedi.inputs")
    if recorded is not None and json.loads(recorded) == inputs.versions and not changed and not lake.rebuild:
        yield from unchanged(lake, table, "its inputs have not changed since its version was computed")
        return
    if merge is not None and not merge.changes and base is not None:
        yield from unchanged(lake, table, "its inputs' changes touch none of its customers or devices")
        return
    quarantine_base = None if quarantine is None else lake.store.snapshot(quarantine)
    erasure = inputs.tombstones.version
    session = inputs.session
    with cached(classified) as classified:
        measured = measure(table, classified, rows_in, pairing)
        rows = kept(classified).select(*table.columns)
        rejected = None if quarantine is None else quarantine_rows(table, classified, context.run.run_id)
        if merge is None:
            output = Output(rows, base, rows_erased=_erased_since(inputs, table, base))
            quarantined = (
                None
                if rejected is None
                else Output(rejected, quarantine_base, rows_erased=_erased_since(inputs, quarantine, quarantine_base))
            )
        else:
            output = replace(
                merged_output(lake, session, table, base, rows, merge.keys, merge.row_key), changes=merge.changes
            )
            quarantined = (
                None
                if rejected is None
                else replace(
                    merged_output(
                        lake, session, quarantine, quarantine_base, rejected, merge.keys, merge.quarantine_key
                    ),
                    changes=merge.changes,
                )
            )
        mode = (
            "full"
            if merge is None
            else f"incremental: {len(merge.changes.identities)} customers, {len(merge.changes.serials)} devices"
        )
        yield from publish(
            context,
            lake,
            table,
            measured,
            output,
            quarantined,
            metadata={"inputs": MetadataValue.json(inputs.versions), "recomputed": mode, **(metadata or {})},
            erasure_version=erasure,
            purge=purge(rows) if purge is not None else False,
        )


def _erased_since(inputs: Inputs, table: ZoneTable, base: Snapshot | None) -> int:
    """Rows of erased customers in the version being replaced, when it predates the tombstones in force."""
    if base is None or erasure_version_of(base) == inputs.tombstones.version:
        return 0
    return inputs.erased_rows(table, base)
