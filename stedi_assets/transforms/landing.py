"""Parsing landing lines against a table's contract."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from stedi_assets.contracts import column_rules
from stedi_assets.tables import ZoneTable
from stedi_assets.transforms import classify as r

LINEAGE_COLUMNS = ("source_file", "line_number", "arrived_at")
RAW = "raw"


def split_lines(files: DataFrame) -> DataFrame:
    """Whole files (`path`, `content`) to one row per line: source_file, line_number (1-based), raw.

    Files are read whole because only then are line numbers exact; a trailing newline ends the last line.
    """
    # \z, not $: in Java regex $ also matches before a final line break, which would drop a last blank line.
    lines = F.split(F.regexp_replace("content", r"\r?\n\z", ""), r"\r?\n")
    return files.select(
        F.col("path").alias("source_file"), "arrived_at", F.posexplode(lines).alias("position", RAW)
    ).select("source_file", (F.col("position") + 1).cast("long").alias("line_number"), "arrived_at", RAW)


def parse_landing(lines: DataFrame, table: ZoneTable) -> DataFrame:
    """Classified parse of landing lines: the table's columns, `raw`, and reason/detail for rejected lines.

    Rejections, first match wins: blank_line (filtered), not_json, missing_field, wrong_type, invalid_value
    (a value outside the contract's checks). Every field is first read as text so that a wrong type is
    reported as such instead of silently turning into null.
    """
    # Parsed as the only element of an array, so that anything after the object (a second record, garbage)
    # makes the line invalid instead of being ignored by the JSON reader.
    as_array = F.from_json(
        F.concat(F.lit("["), RAW, F.lit("]")), T.ArrayType(T.MapType(T.StringType(), T.StringType()))
    )
    parsed = lines.withColumn("_fields", F.when(F.size(as_array) == 1, as_array[0]))
    spellings: dict[str, list[str]] = {}
    for alias, column in table.aliases.items():
        spellings.setdefault(column, []).append(alias)

    record_fields = [f for f in table.schema.fields if f.name not in LINEAGE_COLUMNS]
    text = {
        f.name: F.coalesce(*(F.col("_fields")[name] for name in [f.name, *spellings.get(f.name, [])]))
        for f in record_fields
    }
    typed = {name: value.try_cast(table.schema[name].dataType) for name, value in text.items()}
    parsed = parsed.select(*LINEAGE_COLUMNS, RAW, "_fields", *(typed[name].alias(name) for name in typed))

    rules: list = [
        (F.col(RAW).rlike(r"^\s*$"), r.BLANK_LINE, None),
        (F.col("_fields").isNull(), r.NOT_JSON, None),
    ]
    rules += [(text[f.name].isNull(), r.MISSING_FIELD, f.name) for f in record_fields if not f.nullable]
    rules += [(text[name].isNotNull() & F.col(name).isNull(), r.WRONG_TYPE, name) for name in text]
    checks = column_rules(table.model)
    rules += [(~passes, r.INVALID_VALUE, f"{name}:{check}") for name in text for check, passes in checks[name]]
    reason, detail = r.first_reason(rules)
    return parsed.select(*table.columns, RAW, reason.alias(r.REASON), detail.alias(r.DETAIL))
