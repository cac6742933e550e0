"""The Definitions object loads, and the graph is the one the registry declares."""

from __future__ import annotations

from dagster import AssetKey, Definitions, in_process_executor

from stedi_assets.definitions import defs
from stedi_assets.resources.spark import spark_config
from stedi_assets.settings import Settings
from stedi_assets.tables import ALL_TABLES

UPSTREAMS = {
    "customer_landing": set(),
    "accelerometer_landing": set(),
    "step_trainer_landing": set(),
    "customer_trusted": {"customer_landing"},
    "accelerometer_trusted": {"accelerometer_landing", "customer_landing", "customer_trusted"},
    "customer_curated": {"customer_trusted", "accelerometer_trusted"},
    "step_trainer_trusted": {"step_trainer_landing", "customer_landing", "customer_curated"},
    "machine_learning_curated": {"step_trainer_trusted", "accelerometer_trusted", "customer_curated"},
}


def test_definitions_load() -> None:
    Definitions.validate_loadable(defs)
    assert defs.executor is in_process_executor


def test_every_registered_table_is_an_asset_in_its_zone_group_with_a_contract_check() -> None:
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == set(ALL_TABLES)
    for name, table in ALL_TABLES.items():
        node = graph.get(AssetKey(name))
        assert node.group_name == table.zone.value
        assert table.description in (node.description or "")
        assert [c.name for c in node.metadata["dagster/column_schema"].columns] == table.columns
    checked = {key.asset_key.to_user_string() for key in graph.asset_check_keys}
    assert checked == set(ALL_TABLES)


def test_zone_assets_depend_exactly_on_their_declared_upstreams() -> None:
    graph = defs.resolve_asset_graph()
    for name, upstream in UPSTREAMS.items():
        parents = {key.to_user_string() for key in graph.get(AssetKey(name)).parent_keys}
        assert parents == upstream, name


def test_spark_target_follows_the_master_setting() -> None:
    assert spark_config(Settings(spark_master="local[2]"))["spark.master"] == "local[2]"
    connect = spark_config(Settings(spark_master="sc://spark.example:15002", lake_root="s3://bucket/lake"))
    assert connect["spark.remote"] == "sc://spark.example:15002" and "spark.master" not in connect
    # A Connect client sends session settings only: jars and s3a settings belong to the server's start.
    assert {key for key in connect if not key.startswith("spark.sql.")} == {"spark.remote"}
    assert connect["spark.sql.session.timeZone"] == "UTC"
    overridden = spark_config(Settings(spark_conf={"spark.sql.session.timeZone": "Europe/Paris"}))
    assert overridden["spark.sql.session.timeZone"] == "Europe/Paris"
