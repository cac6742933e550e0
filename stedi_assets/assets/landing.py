"""Landing zone: each feed's new raw files parsed against its contract, merged into the landing table.

A run reads only the files its ledger has not consumed (new, or rewritten since: another fingerprint), and
removes the rows of files that are gone or rewritten; the table's commit records the new ledger atomically.
`lake.rebuild` rereads every file and replaces the table.
"""

from collections.abc import Iterator
from dataclasses import replace

from dagster import AssetCheckResult, AssetExecutionContext, AssetsDefinition, MaterializeResult, multi_asset
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets.assets.accounting import Output, cached, measure, publish, quarantine_rows, unchanged
from stedi_assets.assets.specs import zone_check_specs, zone_specs
from stedi_assets.resources.lake import Lake
from stedi_assets.resources.ledger import Delivery, arrival_times, compare, consumed, read_ledger, write_ledger
from stedi_assets.resources.spark import Spark
from stedi_assets.tables import LANDING_TABLES, QUARANTINE_OF, ZoneTable
from stedi_assets.transforms.classify import kept
from stedi_assets.transforms.landing import parse_landing, split_lines


def read_lines(session: SparkSession, lake: Lake, arrivals: dict[str, int]) -> DataFrame:
    """Every line of the given landing files (URI -> arrival, epoch ms): source_file (as the lake spells it),
    line_number, arrived_at, raw."""
    if not arrivals:
        return session.createDataFrame([], "source_file string, line_number long, arrived_at long, raw string")
    names = session.createDataFrame(
        [(spark_name(lake.storage.spark_uri(uri)), uri, arrived) for uri, arrived in arrivals.items()],
        "spark_name string, lake_name string, arrived_at long",
    )
    whole = session.read.text([lake.storage.spark_uri(uri) for uri in arrivals], wholetext=True).select(
        F.col("_metadata.file_path").alias("path"), F.col("value").alias("content"), F.lit(0).alias("arrived_at")
    )
    lines = split_lines(whole).drop("arrived_at")
    # Spark names files by its own URI (file:/..., s3a://...): back to the lake's spelling.
    return lines.join(F.broadcast(names), lines.source_file == names.spark_name).select(
        F.col("lake_name").alias("source_file"), "line_number", "arrived_at", "raw"
    )


def spark_name(uri: str) -> str:
    return uri if "://" in uri else f"file:{uri}"


def merged(
    lake: Lake, session: SparkSession, table: ZoneTable, base, rows: DataFrame, delivery: Delivery, whole: bool
) -> Output:
    """How a batch's rows enter a table keyed by landing file: rows of gone (or rewritten) files leave."""
    if whole or base is None:
        return Output(rows, base)
    survivors, replaced = lake.survivors(session, table, base, "source_file", delivery.gone)
    return Output(rows.unionByName(survivors), base, replaced)


def landing_asset(table: ZoneTable) -> AssetsDefinition:
    quarantine = QUARANTINE_OF[table.name]

    @multi_asset(name=table.name, specs=zone_specs(table), check_specs=zone_check_specs(table))
    def _landing(
        context: AssetExecutionContext, lake: Lake, spark: Spark
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        with lake.exclusive(table):
            base, quarantine_base = lake.snapshot(table), lake.snapshot(quarantine)
            delta = lake.delta(table)
            ledger = read_ledger(delta, base)
            listed = lake.landing_files(table)
            delivery = Delivery(new=listed, gone=sorted(ledger)) if lake.rebuild else compare(ledger, listed)
            context.log.info(f"{table.name}: {len(delivery.new)} new or rewritten files, {len(delivery.gone)} gone")
            if delivery.empty and base is not None and quarantine_base is not None:
                yield from unchanged(lake, table, "no landing file is new, rewritten or gone")
                return
            session = spark.session
            arrivals = arrival_times(ledger, delivery.new)
            classified = parse_landing(read_lines(session, lake, arrivals), table)
            whole = lake.rebuild or base is None
            with cached(classified) as classified:
                measured = measure(table, classified)
                lines = {row.source_file: row["count"] for row in classified.groupBy("source_file").count().collect()}
                entries = consumed({} if lake.rebuild else ledger, delivery, arrivals, lines, quarantined=set())
                rows = kept(classified).select(*table.columns)
                rejected = quarantine_rows(table, classified, context.run.run_id)
                table_output = merged(lake, session, table, base, rows, delivery, whole)
                yield from publish(
                    context,
                    lake,
                    table,
                    measured,
                    replace(table_output, commit_metadata={"ledger": write_ledger(delta, entries)}),
                    merged(lake, session, quarantine, quarantine_base, rejected, delivery, whole),
                    metadata={
                        "files_new": len(delivery.new),
                        "files_gone": len(delivery.gone),
                        "files_in_ledger": len(entries),
                    },
                )

    return _landing


landing_assets = [landing_asset(table) for table in LANDING_TABLES]
