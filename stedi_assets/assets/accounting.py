"""Row accounting: every input row is either output, filtered (with a reason) or quarantined (with a reason)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from dagster import AssetExecutionContext, MetadataValue, Output
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_assets.assets.specs import table_schema
from stedi_assets.resources.lake import Lake
from stedi_assets.tables import QUARANTINE_OF, ZoneTable
from stedi_assets.transforms import classify as r
from stedi_assets.transforms.landing import RAW


class RowsLostError(RuntimeError):
    """Rows in and rows accounted for disagree: a transform dropped or invented rows."""


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
            "dagster/row_count": self.rows_out,
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


def tally(classified: DataFrame, rows_in: int | None = None, pairing: bool = False) -> RowAccount:
    """Counts a (cached) classified frame by reason in one pass and checks that the rows balance.

    `rows_in` is counted independently from the input where the classification could change the row count;
    only a pairing may add rows.
    """
    by_reason = {row[r.REASON]: row["count"] for row in classified.groupBy(r.REASON).count().collect()}
    rows_out = by_reason.pop(None, 0)
    total = rows_out + sum(by_reason.values())
    rows_in = total if rows_in is None else rows_in
    account = RowAccount(
        rows_in=rows_in,
        rows_out=rows_out,
        filtered={k: v for k, v in by_reason.items() if k not in r.QUARANTINE_REASONS},
        quarantined={k: v for k, v in by_reason.items() if k in r.QUARANTINE_REASONS},
        rows_added_by_pairing=total - rows_in if pairing else 0,
    )
    if not account.balanced or account.rows_added_by_pairing < 0:
        raise RowsLostError(f"rows do not balance: {account}")
    return account


def settle(
    context: AssetExecutionContext,
    lake: Lake,
    table: ZoneTable,
    classified: DataFrame,
    rows_in: int | None = None,
    pairing: bool = False,
) -> Iterator[Output]:
    """The outputs of a zone asset: its kept rows and, where it has one, its quarantine table."""
    classified = lake.cache(classified)
    account = tally(classified, rows_in, pairing)
    if account.rows_in:
        context.log.info(f"{table.name}: {account}")
    metadata = {**account.metadata(), "dagster/column_schema": table_schema(table)}
    yield Output(r.kept(classified).select(*table.columns), output_name=table.name, metadata=metadata)
    quarantine = QUARANTINE_OF.get(table.name)
    if quarantine is not None:
        rejected = classified.where(F.col(r.REASON).isin(*r.QUARANTINE_REASONS)).select(
            RAW,
            "source_file",
            "line_number",
            "arrived_at",
            r.REASON,
            r.DETAIL,
            F.lit(table.name).alias("rejected_by"),
            F.lit(context.run.run_id).alias("run_id"),
        )
        rows = sum(account.quarantined.values())
        yield Output(
            rejected,
            output_name=quarantine.name,
            metadata={
                "dagster/column_schema": table_schema(quarantine),
                "dagster/row_count": rows,
                "rows_in": rows,
                "rows_out": rows,
                "rows_filtered": 0,
                "rows_quarantined": 0,
            },
        )
