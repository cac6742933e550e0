"""Change sets: the keys a commit changed, recorded beside it so downstream tables recompute only those keys."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

CHANGES_SCHEMA = pa.schema([("kind", pa.string()), ("key", pa.string())])


@dataclass(frozen=True)
class Changes:
    """What a commit changed, as the keys downstream tables recompute by: customers (identity keys) and devices
    (serials). A commit that replaced the whole table records no keys: everything downstream is recomputed."""

    identities: frozenset[str] = frozenset()
    serials: frozenset[str] = frozenset()

    def __or__(self, other: Changes) -> Changes:
        return Changes(self.identities | other.identities, self.serials | other.serials)

    def __bool__(self) -> bool:
        return bool(self.identities or self.serials)

    def to_arrow(self) -> pa.Table:
        rows = [("identity", k) for k in sorted(self.identities)] + [("serial", k) for k in sorted(self.serials)]
        return pa.table({"kind": [k for k, _ in rows], "key": [v for _, v in rows]}, schema=CHANGES_SCHEMA)

    @classmethod
    def from_arrow(cls, table: pa.Table) -> Changes:
        rows = table.to_pylist()
        return cls(
            frozenset(r["key"] for r in rows if r["kind"] == "identity"),
            frozenset(r["key"] for r in rows if r["kind"] == "serial"),
        )
