"""Publishing a zone table: its contract checked, then the quarantine and the table committed.

If no blocking rule failed, the quarantine and the table are committed (quarantine first: a run killed in between
leaves the table as it was, and the rerun replaces the same quarantine rows), and the asset reports both and their
checks. An update replaces the whole table, or for an incremental run only the rows of the changed keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
)
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets.assets.accounting import Measured, Metadata, RowAccount, cached, measure, quarantine_rows
from stedi_assets.assets.inputs import Inputs, Merge
from stedi_assets.checks import contract_result, schema_errors
from stedi_assets.lake.changes import Changes
from stedi_assets.lake.delta import Snapshot
from stedi_assets.lake.store import LEAVING
from stedi_assets.resources.lake import Lake
from stedi_assets.tables import ALL_TABLES, QUARANTINE_OF, ZoneTable
from stedi_assets.transforms.classify import kept

# Given a table's version: more metadata for its materialization (the training table's dataset card).
Describe = Callable[[int], Metadata]


@dataclass(frozen=True)
class Output:
    """A table's new rows and how they enter it, after `base` (the version this run read): `replaced` files
    leave the table (None: the whole table is replaced); `commit_metadata` goes into the commit only."""

    frame: DataFrame
    base: Snapshot | None
    replaced: list[str] | None = None
    commit_metadata: Mapping[str, object] = field(default_factory=dict)
    rows_erased: int = 0  # rows of erased customers the previous version held and this one leaves out
    changes: Changes | None = None  # the keys this commit changes (None: all), for downstream tables


def publish(
    context: AssetExecutionContext,
    lake: Lake,
    table: ZoneTable,
    measured: Measured,
    output: Output,
    quarantine_output: Output | None = None,
    metadata: Metadata | None = None,
    checks: Sequence[AssetCheckResult] = (),
    erasure_version: int = -1,
    purge: bool = False,
    describe: Describe | None = None,
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Checks the contract, then commits the quarantine (if any) and the table, reporting both and the checks
    (and what `describe` says of the committed version).

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
    # The quarantine is committed first, but reported after its table: it hangs off the table in the lineage, and
    # Dagster takes a step's materializations in the order of its assets' dependencies.
    quarantined: MaterializeResult | None = None
    if quarantine is not None and quarantine_output is not None:
        rows = sum(account.quarantined.values())
        committed = _commit(lake, quarantine, quarantine_output, common, erasure_version, purge)
        quarantined = MaterializeResult(
            asset_key=quarantine.name,
            metadata={**committed, "rows_in": rows, "rows_out": rows, "rows_filtered": 0, "rows_quarantined": 0},
        )
    committed = _commit(lake, table, output, common, erasure_version, purge)
    described = {} if describe is None else describe(_version(committed))
    yield MaterializeResult(
        asset_key=table.name, metadata={**committed, **account.metadata(), **(metadata or {}), **described}
    )
    if quarantined is not None:
        yield quarantined


def erasure_version_of(snapshot: Snapshot | None) -> int:
    """The tombstones' version a table version was computed against (-1: none yet, or no table version)."""
    return -1 if snapshot is None else int(snapshot.metadata.get("stedi.erasure_version", -1))


def _commit(
    lake: Lake, table: ZoneTable, output: Output, common: Mapping[str, object], erasure_version: int, purge: bool
) -> Metadata:
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


def unchanged(
    lake: Lake, table: ZoneTable, why: str, describe: Describe | None = None
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Reports a table (and its quarantine) as it is: nothing to commit, and the checks its version passed (and
    what `describe` says of the table's version).
    Versions replaced longer ago than the retention are vacuumed all the same: a retention that ends with no new
    file (the schedule of what comes due runs the table for it) is kept too."""
    for name in [table.name] + ([QUARANTINE_OF[table.name].name] if table.name in QUARANTINE_OF else []):
        current = ALL_TABLES[name]
        snapshot = lake.store.snapshot(current)
        assert snapshot is not None, f"{name} has no version to keep"
        vacuumed = lake.store.vacuum(current, lake.retention_hours)
        yield AssetCheckResult(
            asset_key=name, check_name="contract", passed=True, metadata={"checked_with_version": snapshot.version}
        )
        yield MaterializeResult(
            asset_key=name,
            metadata={
                **_table_metadata(lake, current, snapshot),
                **RowAccount(0, 0).metadata(),
                "unchanged": why,
                "files_vacuumed": vacuumed,
                **({} if describe is None or name != table.name else describe(snapshot.version)),
            },
        )


def _version(committed: Metadata) -> int:
    version = committed["table_version"]
    assert isinstance(version, int), "_table_metadata records the version as an int"
    return version


def _table_metadata(lake: Lake, table: ZoneTable, committed: Snapshot) -> Metadata:
    return {
        "dagster/row_count": committed.rows,
        "dagster/uri": lake.store.location(table),
        "table_version": committed.version,
    }


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


@dataclass(frozen=True)
class TableUpdate:
    """A table's new content, computed from an asset's inputs: a classified frame (one row per input row, its
    reason null when the row is kept) and how it enters the table."""

    table: ZoneTable
    classified: DataFrame
    rows_in: int
    # None: the kept rows replace the whole table; a merge: they replace only the rows of the merge's keys.
    merge: Merge | None = None
    pairing: bool = False  # a one-to-many pairing may add rows (see RowAccount)
    changed: bool = False  # something besides the input versions changed the result (consents that matured)
    purge: Callable[[DataFrame], bool] | None = None  # given the kept rows: must older versions become unreadable?
    metadata: Metadata = field(default_factory=dict)
    # More of the table's materialization metadata, from its version (committed, or kept as it is); no Spark.
    describe: Describe | None = None


def apply_update(
    context: AssetExecutionContext, lake: Lake, inputs: Inputs, update: TableUpdate
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Commits an update to its table (and its quarantine), or keeps the table as it is when it was computed
    from the same input versions (and the update says nothing else changed)."""
    table, merge = update.table, update.merge
    quarantine = QUARANTINE_OF.get(table.name)
    base = lake.store.snapshot(table)
    recorded = None if base is None else base.metadata.get("stedi.inputs")
    if recorded is not None and json.loads(recorded) == inputs.versions and not update.changed and not lake.rebuild:
        yield from unchanged(lake, table, "its inputs have not changed since its version was computed", update.describe)
        return
    if merge is not None and not merge.changes and base is not None:
        yield from unchanged(lake, table, "its inputs' changes touch none of its customers or devices", update.describe)
        return
    quarantine_base = None if quarantine is None else lake.store.snapshot(quarantine)
    session = inputs.session
    with cached(update.classified) as classified:
        measured = measure(table, classified, update.rows_in, update.pairing)
        rows = kept(classified).select(*table.columns)
        rejected = None if quarantine is None else quarantine_rows(table, classified, context.run.run_id)
        quarantined = None
        if merge is None:
            output = Output(rows, base, rows_erased=_erased_since(inputs, table, base))
            if quarantine is not None and rejected is not None:
                erased = _erased_since(inputs, quarantine, quarantine_base)
                quarantined = Output(rejected, quarantine_base, rows_erased=erased)
            mode = "full"
        else:
            merged = merged_output(lake, session, table, base, rows, merge.keys, merge.row_key)
            output = replace(merged, changes=merge.changes)
            if quarantine is not None and rejected is not None:
                assert merge.quarantine_key is not None, f"{table.name}: a merge needs the quarantine's key"
                merged = merged_output(
                    lake, session, quarantine, quarantine_base, rejected, merge.keys, merge.quarantine_key
                )
                quarantined = replace(merged, changes=merge.changes)
            mode = f"incremental: {len(merge.changes.identities)} customers, {len(merge.changes.serials)} devices"
        yield from publish(
            context,
            lake,
            table,
            measured,
            output,
            quarantined,
            metadata={"inputs": MetadataValue.json(inputs.versions), "recomputed": mode, **update.metadata},
            erasure_version=inputs.tombstones.version,
            purge=update.purge(rows) if update.purge is not None else False,
            describe=update.describe,
        )


def _erased_since(inputs: Inputs, table: ZoneTable, base: Snapshot | None) -> int:
    """Rows of erased customers in the version being replaced, when it predates the tombstones in force."""
    if base is None or erasure_version_of(base) == inputs.tombstones.version:
        return 0
    return inputs.erased_rows(table, base)
