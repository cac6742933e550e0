"""The lake package is light where it says so: the sensor's and the commands' modules load no Dagster, no Spark."""

from __future__ import annotations

import subprocess
import sys

LIGHT = ["storage", "codecs", "delta", "changes", "ledger", "blanking"]


def test_the_light_modules_load_neither_dagster_nor_spark() -> None:
    imports = "; ".join(f"import stedi_assets.lake.{name}" for name in LIGHT)
    heavy = "sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'pyspark', 'pandera', 'py4j'})"
    found = subprocess.run(
        [sys.executable, "-c", f"import sys; {imports}; print({heavy})"], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"
