"""An asset's inputs decide what to recompute (`Inputs.changes`), read from commit metadata alone: no Spark.

The rule: nothing to go on (no version, a rebuild, no recorded inputs) or anything that changes every row (a
setting, new erasure tombstones, an input rewritten whole) means recompute everything (None); otherwise the union
of the keys the inputs' later commits recorded, and nothing when no input moved.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, cast

import pytest

from stedi_assets.assets.inputs import Inputs
from stedi_assets.lake.changes import Changes
from stedi_assets.lake.delta import Snapshot
from stedi_assets.lake.store import ALL_CHANGED
from stedi_assets.resources.lake import Lake
from stedi_assets.tables import CUSTOMER_ERASURE, CUSTOMER_LANDING, STEP_TRAINER_LANDING, ZoneTable
from stedi_assets_tests.lake.commits import commit

KEY = b"test-key"
ANN, BOB = "ann@example.com", "bob@example.com"
SERIAL = "11111111-1111-4111-8111-111111111111"
NO_SPARK = cast(Any, None)  # Inputs.changes reads no rows


def committed(lake: Lake, table: ZoneTable, base: Snapshot | None, changes: Changes | None) -> Snapshot:
    """A commit of an input table as a run makes it: with its change set (None: it replaced the whole table)."""
    write_id = uuid.uuid4().hex
    recorded = ALL_CHANGED if changes is None else lake.store.record_changes(table, changes, write_id)
    return commit(lake.store.delta(table), [1], base=base, removed=[], changes=recorded, write_id=write_id)


def computed_from(inputs: Inputs, **overrides: object) -> Snapshot:
    """A version of the output table computed from `inputs` as they are now (`overrides` change what it
    records); only its commit metadata counts."""
    return Snapshot(0, [], 0, {"stedi.inputs": json.dumps({**inputs.versions, **overrides})})


def inputs_of(lake: Lake, **settings: str) -> Inputs:
    return Inputs(lake, NO_SPARK, CUSTOMER_LANDING, STEP_TRAINER_LANDING, key=KEY, settings=settings)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(root=str(tmp_path))


def test_nothing_to_go_on_means_everything(lake: Lake) -> None:
    committed(lake, CUSTOMER_LANDING, None, Changes(frozenset({ANN})))
    inputs = inputs_of(lake)
    assert inputs.changes(None) is None  # the table has no version yet
    assert inputs.changes(Snapshot(0, [], 0, {})) is None  # a version that recorded no inputs
    base = computed_from(inputs)
    assert inputs.changes(base) == Changes()
    assert Inputs(Lake(root=lake.root, rebuild=True), NO_SPARK, CUSTOMER_LANDING, key=KEY).changes(base) is None


def test_the_keys_of_every_later_commit_of_every_input(lake: Lake) -> None:
    landing = committed(lake, CUSTOMER_LANDING, None, Changes(frozenset({ANN})))
    steps = committed(lake, STEP_TRAINER_LANDING, None, Changes(serials=frozenset({SERIAL})))
    base = computed_from(inputs_of(lake))
    landing = committed(lake, CUSTOMER_LANDING, landing, Changes(frozenset({BOB})))
    committed(lake, CUSTOMER_LANDING, landing, Changes(frozenset({ANN})))
    assert inputs_of(lake).changes(base) == Changes(frozenset({ANN, BOB}))  # not the keys of the version it read
    committed(lake, STEP_TRAINER_LANDING, steps, Changes(serials=frozenset({SERIAL})))
    assert inputs_of(lake).changes(base) == Changes(frozenset({ANN, BOB}), frozenset({SERIAL}))


def test_an_input_rewritten_whole_means_everything(lake: Lake) -> None:
    landing = committed(lake, CUSTOMER_LANDING, None, Changes(frozenset({ANN})))
    committed(lake, STEP_TRAINER_LANDING, None, Changes())
    base = computed_from(inputs_of(lake))
    landing = committed(lake, CUSTOMER_LANDING, landing, None)
    committed(lake, CUSTOMER_LANDING, landing, Changes(frozenset({BOB})))
    assert inputs_of(lake).changes(base) is None


def test_a_forgotten_change_set_means_everything(lake: Lake) -> None:
    landing = committed(lake, CUSTOMER_LANDING, None, Changes())
    base = computed_from(inputs_of(lake))
    committed(lake, CUSTOMER_LANDING, landing, Changes(frozenset({ANN})))
    assert inputs_of(lake).changes(base) == Changes(frozenset({ANN}))
    assert lake.store.forget_changes(CUSTOMER_LANDING) == 2  # what an erasure does: the change sets name people
    assert inputs_of(lake).changes(base) is None


def test_another_setting_or_new_tombstones_mean_everything(lake: Lake) -> None:
    committed(lake, CUSTOMER_LANDING, None, Changes())
    inputs = inputs_of(lake, consent_policy="since")
    assert inputs.changes(computed_from(inputs)) == Changes()
    assert inputs_of(lake, consent_policy="flag").changes(computed_from(inputs)) is None
    newer_tombstones = computed_from(inputs, **{CUSTOMER_ERASURE.name: 0})
    assert inputs.tombstones.version == -1 and inputs.changes(newer_tombstones) is None
