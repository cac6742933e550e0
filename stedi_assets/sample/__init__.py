"""The sample lake: the three landing feeds with every real-feed defect, and the counts the pipeline must produce
from them (`_sample_expected.json`). Plain Python: importing it loads neither Dagster nor Spark.

Modules, each importing only those before it:

    world      constants (sizes, dates, feeds), the defect `Rates`, whose e-mail is whose, when files arrive
    expected   what was delivered (`Ledger`, `Entry`), the current record, the expected counts, descriptive rules
    generator  the customers, their records and readings, the feed files and their export shapes: `generate`
    cli        `stedi sample` (also `python -m stedi_assets.sample`)
"""

from stedi_assets.sample.generator import generate
from stedi_assets.sample.world import EXPECTED_FILE, FEEDS, SAMPLE_CUSTOMERS, SAMPLE_SEED, Rates

__all__ = ["EXPECTED_FILE", "FEEDS", "SAMPLE_CUSTOMERS", "SAMPLE_SEED", "Rates", "generate"]
