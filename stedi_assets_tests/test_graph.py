"""The whole graph, materialized for real on generated lakes, held to the generator and to an independent result."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from dagster import ExecuteInProcessResult
from pyspark.sql import SparkSession

from stedi_assets.reasons import QUARANTINE_REASONS
from stedi_assets.sample import EXPECTED_FILE
from stedi_assets.tables import ALL_TABLES, CUSTOMER_CURATED, LANDING_TABLES, MACHINE_LEARNING_CURATED
from stedi_assets.transforms.readings import ConsentPolicy
from stedi_assets_tests import lakes, reference
from stedi_assets_tests.lakes import TEST_KEY, duckdb_source, table_frame

IDENTIFIERS = {"email", "user", "customerName", "phone", "birthDay", "serialNumber"}
UPSTREAM_OF = {
    "customer_trusted": "customer_landing",
    "accelerometer_trusted": "accelerometer_landing",
    "customer_curated": "customer_trusted",
    "step_trainer_trusted": "step_trainer_landing",
    "machine_learning_curated": "step_trainer_trusted",
}


pytestmark = pytest.mark.graph


@pytest.fixture(scope="module", params=[ConsentPolicy.SINCE, ConsentPolicy.FLAG], ids=lambda p: p.value)
def run(request, spark: SparkSession, tmp_path_factory) -> tuple[ConsentPolicy, Path, ExecuteInProcessResult]:
    """The session's lake materialized under each policy (the `since` one is conftest's `materialized_lake`)."""
    lake = lakes.materialized(request.param, tmp_path_factory)
    return lake.policy, lake.root, lake.result


def _metadata(result: ExecuteInProcessResult) -> dict[str, dict]:
    return {
        event.asset_key.to_user_string(): {
            k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }


def _stored_rows(root: Path, table: str) -> int:
    """Rows as a non-Spark reader sees them: DuckDB over the data files of the table's current Delta version."""
    return duckdb.sql(f"select count(*) from {duckdb_source(root, ALL_TABLES[table])}").fetchall()[0][0]


def test_every_contract_passes_and_the_descriptive_warnings_are_the_generators(run) -> None:
    _, root, result = run
    assert result.success
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert {name for name, check in evaluations if check == "contract"} == set(ALL_TABLES)
    assert all(e.passed for (_, check), e in evaluations.items() if check == "contract")
    expected = json.loads((root / EXPECTED_FILE).read_text())["descriptive_failures"]
    for table in LANDING_TABLES:
        found = evaluations[(table.name, "descriptive")].metadata["failing_rows_by_rule"].value
        assert {rule: n for rule, n in found.items() if n} == expected[table.name], table.name
    assert sum(sum(rules.values()) for rules in expected.values()) > 0, "the sample has descriptive defects"


def test_every_table_matches_the_generator_and_the_reference(run) -> None:
    policy, root, result = run
    expected = json.loads((root / EXPECTED_FILE).read_text())
    generator_counts = {**expected["landing_rows"], **expected["quarantined_rows"], **expected["tables"][policy.value]}
    independent = reference.compute(root, policy.value, TEST_KEY.encode())["counts"]
    tables = set(generator_counts)  # every zone table; the erasure tombstones have none on a lake without requests
    materialized = {name: meta["dagster/row_count"] for name, meta in _metadata(result).items() if name in tables}
    stored = {name: _stored_rows(root, name) for name in tables}
    assert _metadata(result)["customer_erasure"]["dagster/row_count"] == 0

    assert materialized == generator_counts
    assert independent == generator_counts
    assert stored == generator_counts
    assert generator_counts["machine_learning_curated"] > 0
    assert all(generator_counts[q] > 0 for q in expected["quarantined_rows"]), "every defect kind should occur"


def test_machine_learning_rows_equal_the_reference_row_for_row(run) -> None:
    policy, root, _ = run
    frame = table_frame(root, MACHINE_LEARNING_CURATED)[MACHINE_LEARNING_CURATED.columns]
    actual = Counter(tuple(row) for row in frame.itertuples(index=False))
    assert actual == reference.compute(root, policy.value, TEST_KEY.encode())["machine_learning_rows"]


def test_machine_learning_table_has_no_direct_identifier(run) -> None:
    _, root, _ = run
    frame = table_frame(root, MACHINE_LEARNING_CURATED)
    assert set(frame.columns) == {"sensorReadingTime", "distanceFromObject", "x", "y", "z", "subject_key"}
    assert not IDENTIFIERS & set(frame.columns)
    emails = set(table_frame(root, CUSTOMER_CURATED)["email"])
    keys = set(frame["subject_key"])
    assert keys and not keys & emails


def test_no_file_under_the_research_folder_names_a_person(run) -> None:
    """Not only the table's rows: every file the research database's grant reaches (data, Delta log, the
    project's own `_stedi/` files), Parquet decoded, holds no e-mail and no device serial of the lake."""
    _, root, _ = run
    landing = table_frame(root, ALL_TABLES["customer_landing"])
    names = {value.lower() for value in (*landing["email"].dropna(), *landing["serialNumber"].dropna()) if value}
    files = [path for path in (root / MACHINE_LEARNING_CURATED.path).rglob("*") if path.is_file()]
    assert names and any(path.suffix == ".parquet" for path in files)
    for path in files:
        data = path.read_bytes()
        if data[:4] == b"PAR1":
            data = "\n".join(str(v) for column in pq.read_table(path).columns for v in column.to_pylist()).encode()
        text = data.decode(errors="replace").lower()
        assert not [name for name in names if name in text], path


def test_every_asset_accounts_for_every_row(run) -> None:
    _, _, result = run
    metadata = _metadata(result)
    for name, meta in metadata.items():
        if name not in ALL_TABLES:  # the erasure receipts: not a table
            continue
        assert meta["dagster/uri"].endswith(ALL_TABLES[name].path) and meta["table_version"] == 0, name
        accounted = meta["rows_out"] + meta["rows_filtered"] + meta["rows_quarantined"]
        assert meta["rows_in"] + meta.get("rows_added_by_pairing", 0) == accounted, name
        assert sum(meta.get("filtered_by_reason", {}).values()) == meta["rows_filtered"], name
        assert sum(meta.get("quarantined_by_reason", {}).values()) == meta["rows_quarantined"], name
        for reason in ALL_TABLES[name].reasons:  # each declared reason's count, for the UI to plot over runs
            kind = "quarantined" if reason in QUARANTINE_REASONS else "filtered"
            assert meta[f"{kind}/{reason}"] == meta.get(f"{kind}_by_reason", {}).get(reason, 0), (name, reason)
    for name, upstream in UPSTREAM_OF.items():
        assert metadata[name]["rows_in"] == metadata[upstream]["rows_out"], name
    for name in ("customer_landing", "accelerometer_landing", "step_trainer_landing", "step_trainer_trusted"):
        assert metadata[name]["rows_quarantined"] == metadata[f"{name}_quarantine"]["rows_out"]
