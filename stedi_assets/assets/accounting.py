"""Row accounting: every input row is output, filtered (with a reason) or quarantined (with a reason).

One aggregation over the cached classified frame counts the rows by reason and the contract's failing rows (of the
rows kept and of the rows quarantined), and the run fails if the rows do not balance.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeAlias

from dagster import MetadataValue
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from stedi_assets import reasons
from stedi_assets.checks import rule_counts
from stedi_assets.tables import QUARANTINE_OF, ZoneTable

# A materialization's metadata as the assets build it: plain values (Dagster wraps them) and MetadataValues.
Metadata: TypeAlias = dict[str, MetadataValue | int | float | str | None]


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

    def metadata(self) -> Metadata:
        """The account as materialization metadata: totals, each reason's count as a number of its own
        (`filtered/REASON`, `quarantined/REASON`, every reason the table declares, 0 included, so that the UI
        plots each over runs), and the reasons that counted as JSON."""
        meta: Metadata = {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_filtered": sum(self.filtered.values()),
            "rows_quarantined": sum(self.quarantined.values()),
            "filtered_by_reason": MetadataValue.json({k: v for k, v in sorted(self.filtered.items()) if v}),
            "quarantined_by_reason": MetadataValue.json({k: v for k, v in sorted(self.quarantined.items()) if v}),
        }
        meta |= {f"filtered/{reason}": count for reason, count in sorted(self.filtered.items())}
        meta |= {f"quarantined/{reason}": count for reason, count in sorted(self.quarantined.items())}
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


def account_aggregates(table: ZoneTable, columns: Iterable[str]) -> dict[str, Column]:
    """The aggregates `measure` counts a classified frame (of these columns) with: rows, rows kept, rows by reason,
    and the contract's failing rows of the kept and of the quarantined rows. All are sums except a uniqueness
    rule's (a distinct count)."""
    reason = F.col(reasons.REASON)
    quarantine = QUARANTINE_OF.get(table.name)
    present = set(columns)
    aggregates = {"_total": F.count(F.lit(1)), "_kept": F.sum(F.when(reason.isNull(), 1).otherwise(0))}
    aggregates |= {f"reason:{name}": F.sum(F.when(reason == name, 1).otherwise(0)) for name in sorted(table.reasons)}
    kept_rules = rule_counts(table.model, present, reason.isNull())
    aggregates |= {f"kept:{name}": value for name, value in kept_rules.items()}
    if quarantine is not None:
        quarantined = reason.isin(*sorted(table.reasons & reasons.QUARANTINE_REASONS))
        rules = rule_counts(quarantine.model, present & set(quarantine.columns), quarantined)
        aggregates |= {f"quarantine:{name}": value for name, value in rules.items()}
    return aggregates


def measure(table: ZoneTable, classified: DataFrame, rows_in: int | None = None, pairing: bool = False) -> Measured:
    """Counts a (cached) classified frame by reason, and the contract's failing rows, in one aggregation.

    `rows_in` is counted independently from the input where the classification could change the row count;
    only a pairing may add rows.
    """
    aggregates = account_aggregates(table, classified.columns)
    totals = classified.agg(*(v.alias(k) for k, v in aggregates.items())).first()
    assert totals is not None, "an aggregate without grouping has one row"
    return accounted(table, {k: int(v or 0) for k, v in totals.asDict().items()}, rows_in, pairing)


def accounted(table: ZoneTable, row: Mapping[str, int], rows_in: int | None = None, pairing: bool = False) -> Measured:
    """The account of a classified frame from its `account_aggregates`; raises RowsLostError where rows do not
    balance or carry a reason the table does not declare."""
    by_reason = {name: row[f"reason:{name}"] for name in sorted(table.reasons)}
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
