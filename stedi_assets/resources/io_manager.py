"""Dagster's view of the lake: asset outputs and inputs are zone tables at their paths."""

from dagster import ConfigurableIOManager, InputContext, OutputContext, ResourceDependency
from pyspark.sql import DataFrame

from stedi_assets.resources.lake import Lake
from stedi_assets.tables import ALL_TABLES, Zone


class LakeIOManager(ConfigurableIOManager):
    """Stores each asset as its zone table (Spark DataFrames cannot be pickled by the default IO manager)."""

    lake: ResourceDependency[Lake]

    def handle_output(self, context: OutputContext, obj: DataFrame) -> None:
        table = ALL_TABLES[context.asset_key.path[-1]]
        self.lake.write(table, obj)
        if table.zone is not Zone.LANDING:
            context.add_output_metadata({"path": self.lake.uri(table)})

    def load_input(self, context: InputContext) -> DataFrame:
        return self.lake.read(ALL_TABLES[context.asset_key.path[-1]])
