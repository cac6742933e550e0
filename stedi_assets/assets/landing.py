"""Landing zone: the raw feeds parsed against their contracts; rejected lines go to quarantine."""

from collections.abc import Iterator

from dagster import AssetExecutionContext, AssetsDefinition, Output, multi_asset

from stedi_assets.assets.accounting import settle
from stedi_assets.assets.specs import zone_outs
from stedi_assets.resources.lake import Lake
from stedi_assets.tables import LANDING_TABLES, ZoneTable


def landing_asset(table: ZoneTable) -> AssetsDefinition:
    @multi_asset(name=table.name, outs=zone_outs(table))
    def _landing(context: AssetExecutionContext, lake: Lake) -> Iterator[Output]:
        yield from settle(context, lake, table, lake.parse_landing_files(table))

    return _landing


landing_assets = [landing_asset(table) for table in LANDING_TABLES]
