"""What an asset reads: its upstream tables at the versions current when it started, the settings that change
its result, and, for an incremental run, the keys (customers, devices) whose rows it recomputes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets.assets.tombstones import Tombstones
from stedi_assets.lake.changes import Changes
from stedi_assets.lake.delta import Snapshot
from stedi_assets.resources.lake import Lake
from stedi_assets.tables import ALL_TABLES, CUSTOMER_ERASURE, CUSTOMER_LANDING, QUARANTINE_OF, ZoneTable
from stedi_assets.transforms.customers import quarantined_identities
from stedi_assets.transforms.erased_rows import ERASED, SERIAL, column_identities
from stedi_assets.transforms.identity import IDENTITY_KEY
from stedi_assets.transforms.parsing import RAW

# The tables whose raw lines a rebuild reads again: quarantined customer lines are records that withhold consent.
_CUSTOMER_LINES = {CUSTOMER_LANDING.name, QUARANTINE_OF[CUSTOMER_LANDING.name].name}


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
    def table_versions(self) -> dict[str, int | None]:
        """Each input table's version (None: not materialized yet)."""
        return {name: None if s is None else s.version for name, s in self.snapshots.items()}

    @property
    def versions(self) -> dict[str, int | str | None]:
        return {
            **self.table_versions,
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
        for name, version in self.table_versions.items():
            if recorded.get(name) == version:
                continue
            found = self.lake.store.changes(ALL_TABLES[name], recorded.get(name), version)
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
        return self.tombstones.mark(self.session, frame, self.key, table).where(F.col(ERASED)).count()


def changed_keys(frame: DataFrame, table: ZoneTable) -> Changes:
    """The customers and devices rows of `table` (a landing table or its quarantine) name, as a rebuild reads
    them: their e-mail and serial columns, and for customer lines the e-mails in raw lines that the rule for
    quarantined records reads (never a looser pattern: a rebuild reads nothing else in raw lines)."""
    named = column_identities(frame)
    if RAW in frame.columns and table.name in _CUSTOMER_LINES:
        named.append(quarantined_identities(frame.where(F.col(RAW).isNotNull())))
    identities = (
        {row[IDENTITY_KEY] for row in reduce(DataFrame.unionByName, named).distinct().collect()} if named else set()
    )
    serials = {row[SERIAL] for row in frame.select(SERIAL).distinct().collect()} if SERIAL in frame.columns else set()
    return Changes(frozenset(identities - {"", None}), frozenset(serials - {None}))


@dataclass(frozen=True)
class Merge:
    """An incremental result: it replaces, in the table, the rows whose key is one of `keys` (column `_key`)."""

    keys: DataFrame
    row_key: Callable[[DataFrame], Column]
    changes: Changes
    quarantine_key: Callable[[DataFrame], Column] | None = None
