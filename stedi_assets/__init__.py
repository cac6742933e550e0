"""STEDI lakehouse: the zone tables as a Dagster asset graph over PySpark.

`defs` (what `dagster ... -m stedi_assets` loads) is imported on first access, so that importing a light
part of the package (the `stedi sql` command, the sample generator) does not import Dagster and Spark.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "defs":
        from stedi_assets.definitions import defs

        return defs
    raise AttributeError(f"module 'stedi_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return ["defs"]
