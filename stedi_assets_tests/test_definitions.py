"""The Definitions object loads, and the graph is the one the registry declares, with what the UI shows."""

from __future__ import annotations

from dagster import AssetKey, AssetSelection, Definitions, in_process_executor

from stedi_assets.definitions import defs
from stedi_assets.tables import ALL_TABLES, QUARANTINE_OF

# A quarantine table is drawn in the group of the table whose rejects it holds.
QUARANTINED_BY = {quarantine.name: ALL_TABLES[name] for name, quarantine in QUARANTINE_OF.items()}
UPSTREAMS = {
    "customer_erasure": set(),
    "customer_landing": {"customer_erasure"},
    "accelerometer_landing": {"customer_erasure"},
    "step_trainer_landing": {"customer_erasure"},
    "customer_trusted": {"customer_landing", "customer_landing_quarantine"},
    "accelerometer_trusted": {"accelerometer_landing", "customer_landing", "customer_trusted"},
    "customer_curated": {"customer_trusted", "accelerometer_trusted"},
    "step_trainer_trusted": {"step_trainer_landing", "customer_landing", "customer_trusted", "customer_curated"},
    "machine_learning_curated": {
        "step_trainer_trusted",
        "accelerometer_trusted",
        "customer_landing",
        "customer_curated",
    },
    "erasure_receipts": {"customer_curated", "machine_learning_curated"},
    # A quarantine hangs off its table, made by the same step.
    **{quarantine.name: {name} for name, quarantine in QUARANTINE_OF.items()},
}


def test_definitions_load() -> None:
    definitions = defs()
    Definitions.validate_loadable(definitions)
    assert definitions.executor is in_process_executor


def test_every_registered_table_is_an_asset_in_its_zone_group_with_its_metadata_and_checks() -> None:
    assert defs().resolve_asset_graph().get(AssetKey("erasure_receipts")).group_name == "curated"
    graph = defs().resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == {*ALL_TABLES, "erasure_receipts"}
    for name, table in ALL_TABLES.items():
        node = graph.get(AssetKey(name))
        assert node.group_name == (QUARANTINED_BY[name].zone.value if name in QUARANTINED_BY else table.zone.value)
        assert table.description in (node.description or "")
        assert [c.name for c in node.metadata["dagster/column_schema"].columns] == table.columns
        assert node.metadata["dagster/table_name"] == name
        assert node.tags["zone"] == table.zone.value and node.tags["entity"] == table.entity
        assert ("pii" in node.tags) is table.pii, name
        assert node.owners and "delta" in node.kinds
        assert "dagster/code_references" in node.metadata, name
    assert "pii" not in graph.get(AssetKey("machine_learning_curated")).tags
    checked = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert {name for name, check in checked if check == "contract"} == set(ALL_TABLES)


def test_curated_tables_carry_column_lineage_to_existing_upstream_columns() -> None:
    graph = defs().resolve_asset_graph()
    for name in ("customer_curated", "machine_learning_curated"):
        lineage = graph.get(AssetKey(name)).metadata["dagster/column_lineage"]
        assert set(lineage.deps_by_column) == set(ALL_TABLES[name].columns)
        for deps in lineage.deps_by_column.values():
            for dep in deps:
                assert dep.column_name in ALL_TABLES[dep.asset_key.to_user_string()].columns


def test_zone_assets_depend_exactly_on_their_declared_upstreams() -> None:
    graph = defs().resolve_asset_graph()
    for name, upstream in UPSTREAMS.items():
        parents = {key.to_user_string() for key in graph.get(AssetKey(name)).parent_keys}
        assert parents == upstream, name
    # The receipts come after every table (a quarantine: made by its table's step), whatever a run selects.
    upstream = AssetSelection.assets("erasure_receipts").upstream(include_self=False).required_multi_asset_neighbors()
    upstream = upstream.resolve(graph)
    assert {key.to_user_string() for key in upstream} == set(ALL_TABLES)
    # A table and its quarantine are made by the same step: they are selected together.
    for name, quarantine in QUARANTINE_OF.items():
        assert graph.get(AssetKey(name)).assets_def is graph.get(AssetKey(quarantine.name)).assets_def
