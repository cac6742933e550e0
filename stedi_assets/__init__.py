"""STEDI lakehouse: the zone tables as a Dagster asset graph over PySpark."""

from stedi_assets.definitions import defs

__all__ = ["defs"]
