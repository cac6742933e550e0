"""Pure PySpark transformations: DataFrames in, DataFrame out; no I/O, no Dagster.

Most return a *classified* frame: one row per input row, with the column `reason` null for rows that are
kept and naming the rule otherwise (see `classify.py`), so an asset can account for every row in one pass.
"""
