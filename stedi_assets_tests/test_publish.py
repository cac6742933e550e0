"""Publishing a zone table: a blocking contract failure commits nothing (readers keep the last good version)
and skips everything downstream; an undeclared reason or unbalanced rows fail the run."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, asset, materialize, multi_asset
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets.assets.accounting import RowsLostError, measure
from stedi_assets.assets.inputs import Inputs
from stedi_assets.assets.landing import measure_by_file
from stedi_assets.assets.publishing import TableUpdate, apply_update
from stedi_assets.assets.specs import zone_check_specs, zone_specs
from stedi_assets.definitions import defs
from stedi_assets.reasons import DETAIL, REASON
from stedi_assets.resources.lake import Lake
from stedi_assets.resources.spark import Spark
from stedi_assets.tables import ACCELEROMETER_LANDING, CUSTOMER_TRUSTED
from stedi_assets.transforms.erased_rows import ERASED
from stedi_assets.transforms.parsing import LINES_SCHEMA, parse_landing
from stedi_assets_tests.builders import customer
from stedi_assets_tests.lakes import TEST_KEY, generate_lake, run_config, table_frame


def classified(spark: SparkSession, *records: dict, reason: str | None = None) -> DataFrame:
    rows = [tuple(r[c] for c in CUSTOMER_TRUSTED.columns) for r in records]
    frame = spark.createDataFrame(rows, CUSTOMER_TRUSTED.schema)
    return frame.withColumn(REASON, F.lit(reason).cast("string")).withColumn(DETAIL, F.lit(None).cast("string"))


def publishing(frame: DataFrame):
    """customer_trusted as an asset that publishes the given classified frame, and an asset downstream of it."""

    @multi_asset(specs=zone_specs(CUSTOMER_TRUSTED), check_specs=zone_check_specs(CUSTOMER_TRUSTED))
    def customer_trusted(context, lake: Lake, spark: Spark):
        inputs = Inputs(lake, spark.session, key=TEST_KEY.encode())
        yield from apply_update(
            context, lake, inputs, TableUpdate(CUSTOMER_TRUSTED, frame, frame.count(), changed=True)
        )

    @asset(deps=[CUSTOMER_TRUSTED.name])
    def downstream() -> None:
        """Materializes whenever it runs: its absence shows that the failed check stopped it."""

    return [customer_trusted, downstream]


def run(assets, root: Path):
    config = run_config(root)
    del config["resources"]["privacy"]
    resources = {k: v for k, v in defs().resources.items() if k in ("lake", "spark")}
    with DagsterInstance.ephemeral() as instance:
        return materialize(assets, resources=resources, run_config=config, instance=instance, raise_on_error=False)


def test_a_failing_trusted_contract_commits_nothing_and_skips_downstream(spark: SparkSession, tmp_path: Path) -> None:
    generate_lake(tmp_path, customers=3)
    good = run(publishing(classified(spark, customer(email="a@x.com"), customer(email="b@x.com"))), tmp_path)
    assert good.success
    assert sorted(table_frame(tmp_path, CUSTOMER_TRUSTED)["email"]) == ["a@x.com", "b@x.com"]

    duplicate = customer(email="a@x.com", shareWithResearchAsOfDate=customer()["shareWithResearchAsOfDate"] + 1)
    bad = run(publishing(classified(spark, customer(email="a@x.com"), duplicate)), tmp_path)
    assert not bad.success
    (evaluation,) = bad.get_asset_check_evaluations()
    assert not evaluation.passed
    failing = {k: v for k, v in evaluation.metadata["failing_rows_by_check"].value.items() if v}
    assert failing == {"unique(email)": 1}
    assert bad.get_asset_materialization_events() == []
    # Readers still see the last good version.
    assert sorted(table_frame(tmp_path, CUSTOMER_TRUSTED)["email"]) == ["a@x.com", "b@x.com"]
    assert {e.asset_key for e in good.get_asset_materialization_events()} == {
        AssetKey(CUSTOMER_TRUSTED.name),
        AssetKey("downstream"),
    }


def test_a_reason_the_table_does_not_declare_fails_the_count(spark: SparkSession) -> None:
    frame = classified(spark, customer(email="a@x.com"), reason="because")
    with pytest.raises(RowsLostError, match="not declared"):
        measure(CUSTOMER_TRUSTED, frame)


def test_rows_that_do_not_balance_fail_the_count(spark: SparkSession) -> None:
    frame = classified(spark, customer(email="a@x.com"))
    with pytest.raises(RowsLostError, match="do not balance"):
        measure(CUSTOMER_TRUSTED, frame, rows_in=2)


def test_each_declared_reason_is_a_number_of_its_own_in_the_metadata(spark: SparkSession) -> None:
    frame = classified(spark, customer(email="a@x.com"), customer(email="b@x.com"), reason="no_consent")
    metadata = measure(CUSTOMER_TRUSTED, frame).account.metadata()
    per_reason = {k: v for k, v in metadata.items() if k.startswith(("filtered/", "quarantined/"))}
    assert per_reason == {
        f"filtered/{reason}": 2 if reason == "no_consent" else 0 for reason in CUSTOMER_TRUSTED.reasons
    }
    assert metadata["filtered_by_reason"].value == {"no_consent": 2}  # the JSON names the reasons that counted


def test_a_landing_batch_counted_by_file_adds_up_to_the_batch_counted_whole(spark: SparkSession) -> None:
    """`measure_by_file` (one aggregation by file) against `measure`, a count by file and the erased lines found
    directly, on two files with kept, filtered, quarantined and erased lines."""
    good = '{"user":"a@x.com","timestamp":1675555215000,"x":1,"y":2,"z":3}'
    lines = [
        ("a.json", 1, 1, good),
        ("a.json", 2, 1, ""),
        ("a.json", 3, 1, "not json"),
        ("b.json", 1, 2, good.replace("a@x.com", "b@x.com")),
        ("b.json", 2, 2, '{"user":"b@x.com"}'),
        ("b.json", 3, 2, good.replace("1675555215000", "1675555215200")),
    ]
    parsed = parse_landing(spark.createDataFrame(lines, LINES_SCHEMA), ACCELEROMETER_LANDING)
    erased = (F.col("source_file") == "b.json") & F.col("line_number").isin(1, 2)
    classified = parsed.withColumn(ERASED, erased).withColumn(
        REASON, F.when(F.col(ERASED), F.lit("erased")).otherwise(F.col(REASON))
    )
    measured, per_file, erased_lines = measure_by_file(ACCELEROMETER_LANDING, classified)
    assert measured == measure(ACCELEROMETER_LANDING, classified)
    assert measured.account.quarantined["not_json"] == 1 and measured.account.filtered["erased"] == 2
    assert per_file == {row.source_file: row["count"] for row in classified.groupBy("source_file").count().collect()}
    assert per_file == {"a.json": 3, "b.json": 3}
    assert sorted(erased_lines) == [("b.json", 1), ("b.json", 2)]
