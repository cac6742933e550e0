"""Parsing landing lines against a table's contract.

A line is one JSON object. What makes a line a row, in order (the first rule that holds names the reason):

- `blank_line` (filtered): nothing but JSON white space (space, tab) after an optional byte-order mark.
- `not_json`: not exactly one strict JSON value (no single quotes, NaN, comments, trailing data), not an
  object, or a value Spark's VARIANT cannot hold (an object nested in a value with a duplicated key, a lone
  UTF-16 surrogate escape).
- `duplicate_key`: a key appears twice in the object. Keys match the contract's columns case-insensitively,
  as Athena's OpenX JSON SerDe matches them (`Email` fills `email`, `timeStamp` fills `timestamp`), so `email`
  and `Email` in one object are a duplicate too. Detail: the column, or the key as delivered the second time.
- For a **required** column (see `contracts`): `missing_field` (absent or null where the column is not
  nullable), `wrong_type` (a JSON type the column does not take: text for a number, a fraction or a number
  beyond range for an integer, a number or object for text), `invalid_value` (outside the column's checks;
  detail `column:check`).
- A **descriptive** column never rejects the row. Where it fails, the rule's name (`column:wrong_type`,
  `column:check`, `column:not_nullable`) is listed in the row's `descriptive_failures`, and the value is kept
  as delivered: a string column keeps the JSON text of a non-string value (`42` stays "42"; numbers as Spark
  writes them, 1e300 as "1.0E300"), and a number column holds null where the value is not a number of its
  type (text in a long column).

Keys that name no column are ignored. A UTF-8 byte-order mark at the start of a line is dropped (a file's
first line; concatenated files can carry one later too); `raw` keeps the line as delivered.

Two readings, one classification. The exact reading (`read_objects`: every key with its VARIANT value) costs
about 4x a typed one, so a line it cannot surprise is read typed instead (`from_json` with the columns' types):
one flat object whose keys are the columns' own spellings, each once, and whose values are of the column's type
in a form both readings turn into the same value (a string without surrogate escapes, an integer that fits, a
number of at most 15 digits without exponent or negative zero, null). `with_plain` says which lines those are;
every other line (a BOM, an unknown key, a spelling in another case, an exponent, a nested value, garbage) takes
the exact reading. `parse_landing(..., typed_reading=False)` reads every line exactly: the tests hold the two to
the same result.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from functools import reduce
from typing import NamedTuple

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from stedi_assets import reasons
from stedi_assets.contracts import DESCRIPTIVE, Lineage, check_names, column_rules, severity
from stedi_assets.lake.names import text_name
from stedi_assets.tables import ZoneTable

LINEAGE_COLUMNS = tuple(Lineage.to_schema().columns)  # source_file, line_number, arrived_at
RAW = "raw"
DESCRIPTIVE_FAILURES = "descriptive_failures"
LINES_SCHEMA = T.StructType(
    [
        T.StructField("source_file", T.StringType(), False),
        T.StructField("line_number", T.LongType(), True),
        T.StructField("arrived_at", T.LongType(), False),
        T.StructField(RAW, T.StringType(), True),
    ]
)
# Strict JSON: Spark's JSON reader accepts single quotes and NaN/Infinity unless told otherwise.
JSON_OPTIONS = {"allowSingleQuotes": "false", "allowNonNumericNumbers": "false"}
BOM = "\ufeff"
_INTEGRAL = ("TINYINT", "SMALLINT", "INT", "BIGINT")
_FIELDS = "_fields"
_ENTRIES = "_entries"
_SEPARATOR = "\u0000"
_PLAIN = "_plain"  # the line takes the typed reading (`with_plain`)
_TYPED = "_typed"  # its values, so read
_KEYS = "_keys"


class FileFault(NamedTuple):
    """Why a whole landing file is quarantined: a reason of `reasons.FILE_REASONS`, and what was found."""

    reason: str
    detail: str


def _json_type_fits(kind: Column, dtype: T.DataType) -> Column:
    """Whether a JSON value whose VARIANT type is `kind` (schema_of_variant) may fill a column of `dtype`."""
    if isinstance(dtype, T.StringType):
        return kind == "STRING"
    if isinstance(dtype, T.LongType | T.IntegerType):
        return kind.isin(*_INTEGRAL)
    if isinstance(dtype, T.DoubleType):
        return kind.isin(*_INTEGRAL, "FLOAT", "DOUBLE") | kind.startswith("DECIMAL")
    raise NotImplementedError(f"no JSON typing rule for {dtype.simpleString()} columns yet; add it here")


def _read_value(json_value: Column, dtype: T.DataType) -> Column:
    """A VARIANT value as a column of `dtype` takes it; null where its JSON type does not fit (`wrong_type`)."""
    return F.when(
        _json_type_fits(F.schema_of_variant(json_value), dtype),
        F.try_variant_get(json_value, "$", dtype.simpleString()),
    )


def _value_pattern(dtype: T.DataType) -> str:
    """A JSON value of `dtype` that both readings read alike (Java regex; possessive: a line never backtracks)."""
    if isinstance(dtype, T.StringType):
        # No raw control character (strict JSON), no surrogate escape (VARIANT refuses a lone one).
        return r'"(?:[^"\\\x00-\x1f]++|\\["\\/bfnrt]|\\u(?![dD][89a-fA-F])[0-9a-fA-F]{4})*+"'
    if isinstance(dtype, T.IntegerType):
        return r"-?(?:0|[1-9][0-9]{0,8})"  # at most 9 digits: never out of range
    if isinstance(dtype, T.LongType):
        return r"-?(?:0|[1-9][0-9]{0,17})"
    if isinstance(dtype, T.DoubleType):
        # At most 15 digits, so that VARIANT's decimal and the typed reading's double round alike; no exponent;
        # no negative zero (an integer -0 is 0 to VARIANT, -0.0 to a double).
        return r"(?:-(?!0(?:\.0*)?(?![0-9.])))?(?=[0-9.]{1,16}(?![0-9.]))(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"
    raise NotImplementedError(f"no typed reading of {dtype.simpleString()} columns yet; add it here")


def _spellings(table: ZoneTable) -> dict[str, list[str]]:
    """The keys the typed reading takes for each record column: its own name and its aliases, as declared."""
    record = [f.name for f in table.schema.fields if f.name not in LINEAGE_COLUMNS]
    return {name: [name, *(alias for alias, column in table.aliases.items() if column == name)] for name in record}


def with_plain(lines: DataFrame, table: ZoneTable) -> DataFrame:
    """`lines` with `_plain`: whether a line (`raw`) is one the typed reading reads exactly as `read_objects` does
    (see the module doc). It matches the plain grammar, and its keys, as Spark's JSON reader lists them, are
    distinct columns. Staged: the keys are listed once, and only for lines of the grammar."""
    ws = "[ \\t]*+"
    types = {f.name: f.dataType for f in table.schema.fields}
    pairs = "|".join(
        f'"(?:{"|".join(spellings)})"{ws}:{ws}(?:{_value_pattern(types[name])}|null)'
        for name, spellings in _spellings(table).items()
    )
    grammar = f"^{ws}\\{{{ws}(?:(?:{pairs})(?:{ws},{ws}(?:{pairs}))*+)?{ws}\\}}{ws}\\z"
    keyed = lines.withColumn(_KEYS, F.when(F.col(RAW).rlike(grammar), F.json_object_keys(RAW)))
    keys = F.col(_KEYS)
    given = [
        reduce(operator.or_, (F.array_contains(keys, key) for key in spellings)).cast("int")
        for spellings in _spellings(table).values()
    ]
    # A repeated key, or two spellings of one column, leave fewer columns given than keys.
    distinct = F.size(keys) == reduce(operator.add, given)
    return keyed.withColumn(_PLAIN, F.coalesce(keys.isNotNull() & distinct, F.lit(False))).drop(_KEYS)


def _spelled_field(column: str, spelling: int) -> str:
    return f"{column}_{spelling}"


def typed_values(table: ZoneTable) -> Column:
    """A plain line's values (`with_plain`), as a struct with a field for each spelling of each record column,
    named by `_spelled_field` (JSON keys match case-sensitively, field references do not: `timeStamp` and
    `timestamp` are read as they are spelled, then renamed)."""
    types = {f.name: f.dataType for f in table.schema.fields}
    spelled = [(name, i, key) for name, keys in _spellings(table).items() for i, key in enumerate(keys)]
    read = T.StructType([T.StructField(key, types[name]) for name, _, key in spelled])
    named = T.StructType([T.StructField(_spelled_field(name, i), types[name]) for name, i, _ in spelled])
    return F.from_json(F.col(RAW), read, JSON_OPTIONS).cast(named)


def given_values(column: str, dtype: T.DataType) -> Column:
    """Every value a line read by `read_objects` gives a column, typed as `parse_landing` types it (null where
    it could not read it): one for each time the line gives the column's key, in any spelling."""
    given = F.filter(_ENTRIES, lambda entry: entry["key"] == column.lower())
    return F.transform(given, lambda entry: _read_value(entry["value"], dtype))


def _canonical(table: ZoneTable):
    """The column a JSON key fills: keys match case-insensitively; `table.aliases` adds other spellings."""
    aliases = {
        alias.lower(): column.lower() for alias, column in table.aliases.items() if alias.lower() != column.lower()
    }
    if not aliases:
        return F.lower
    alias_map = F.create_map(*(F.lit(x) for pair in aliases.items() for x in pair))

    def canonical(key: Column) -> Column:
        return F.coalesce(F.element_at(alias_map, F.lower(key)), F.lower(key))

    return canonical


def read_objects(lines: DataFrame, table: ZoneTable, skip: str | None = None, carry: Sequence[str] = ()) -> DataFrame:
    """How a landing line is read, for the parser and for whatever reads quarantined lines again (one reading).

    Takes the lineage columns and `raw`; adds _text (the line without a BOM), _entries (each key of the object
    as the column it fills, lower-cased, with its VARIANT value, repeated keys included; null for a line that is
    not one JSON object), _fields (the same as a map; empty for an object with a repeated key) and _duplicate
    (the first repeated key, named as its column or as delivered). Lines where the boolean column `skip` holds
    are not read (all four null); the columns named in `carry` are kept."""
    text = F.regexp_replace(RAW, f"^{BOM}", "")
    if skip is not None:
        text = F.when(~F.col(skip), text)
    # Parsed as the only element of an array, so that anything after the object (a second record, garbage)
    # makes the line invalid instead of being ignored by the JSON reader (see `whole` for the one way around it).
    as_array = F.from_json(
        F.concat(F.lit("["), F.col("_text"), F.lit("]")),
        T.ArrayType(T.MapType(T.StringType(), T.VariantType())),
        JSON_OPTIONS,
    )
    # Spark's JSON reader stops at the end of the first value and ignores the rest: "[" + "{..}] x" + "]"
    # reads as one object. Read inside an object instead, the same line fails ({"v":{..}] x}), and a line that
    # closes that object early ("{..}} x") fails the array: a line passing both is exactly one value. A line
    # without brackets cannot close the array early, so only lines with one pay for the second parse.
    inside_object = F.json_object_keys(F.concat(F.lit('{"v":'), F.col("_text"), F.lit("}"))).isNotNull()
    bracketed = F.col("_text").contains("[") | F.col("_text").contains("]")
    whole = F.when(bracketed, inside_object).otherwise(F.lit(True))
    staged = lines.select(*LINEAGE_COLUMNS, RAW, *carry, text.alias("_text")).withColumn("_array", as_array)
    staged = staged.withColumn("_obj", F.when((F.size("_array") == 1) & whole, F.col("_array")[0]))
    # from_json keeps every occurrence of a repeated key in the map (whatever spark.sql.mapKeyDedupPolicy
    # says), so map_keys shows duplicates. Keys are lower-cased without a lambda where they can be (lambdas
    # run interpreted, row by row): joined, lower-cased and split again, unless a key holds the separator.
    keys = F.map_keys("_obj")
    canonical = _canonical(table)
    if canonical is F.lower:
        joined = F.split(F.lower(F.array_join(keys, _SEPARATOR)), _SEPARATOR)
        canon = F.when(F.size(joined) == F.size(keys), joined).otherwise(F.transform(keys, canonical))
    else:
        canon = F.transform(keys, canonical)
    staged = staged.withColumn("_canon", canon)
    canon = F.col("_canon")
    repeated = F.size(F.array_distinct(canon)) < F.size(canon)
    # A row with a repeated key is quarantined: its fields are never read, so its map stays empty (a map built
    # with a repeated key would fail the job under the default dedup policy); only its detail needs a lambda.
    at = F.array_position(F.transform(canon, lambda key, i: F.array_position(canon, key) < i + 1), True).cast("int")
    columns = {name.lower(): name for name in table.columns}
    column_of = F.create_map(*(F.lit(x) for pair in columns.items() for x in pair))
    duplicate = F.coalesce(F.element_at(column_of, F.element_at(canon, at)), F.element_at(keys, at))
    empty = F.create_map().cast(T.MapType(T.StringType(), T.VariantType()))
    fields = F.when(F.col("_obj").isNull(), F.lit(None)).when(repeated, empty)
    return staged.select(
        *LINEAGE_COLUMNS,
        RAW,
        *carry,
        "_text",
        F.arrays_zip(canon.alias("key"), F.map_values("_obj").alias("value")).alias(_ENTRIES),
        fields.otherwise(F.map_from_arrays(canon, F.map_values("_obj"))).alias(_FIELDS),
        F.when(repeated, duplicate).alias("_duplicate"),
    )


def descriptive_rules(table: ZoneTable) -> list[str]:
    """The names of the table's descriptive rules, as parse_landing lists them in `descriptive_failures`."""
    names = []
    checks = check_names(table.model, only=DESCRIPTIVE)
    for f in table.schema.fields:
        if f.name in checks:
            names += [f"{f.name}:not_nullable"] if not f.nullable else []
            names += [f"{f.name}:wrong_type", *(f"{f.name}:{check}" for check in checks[f.name])]
    return names


def _field(name: str) -> Column:
    """The VARIANT value of a column's key; null when absent (and in a row with a repeated key)."""
    return F.element_at(F.col(_FIELDS), F.lit(name.lower()))


def parse_landing(lines: DataFrame, table: ZoneTable, typed_reading: bool = True) -> DataFrame:
    """Classified parse of landing lines (`LINES_SCHEMA`): the table's columns, `raw`, reason/detail for
    rejected lines, and `descriptive_failures` (the descriptive rules each row fails; see the module doc).
    `typed_reading=False` reads every line the exact way (the typed reading's tests compare the two)."""
    record_fields = [f for f in table.schema.fields if f.name not in LINEAGE_COLUMNS]
    checks = column_rules(table.model)
    lines = lines.select(*LINEAGE_COLUMNS, RAW)
    lines = with_plain(lines, table) if typed_reading else lines.withColumn(_PLAIN, F.lit(False))
    lines = lines.withColumn(_TYPED, F.when(F.col(_PLAIN), typed_values(table)))
    keep = [*LINEAGE_COLUMNS, RAW, "_text", _FIELDS, "_duplicate", _PLAIN, _TYPED]
    # Staged selects, so that each value is looked up, typed and tested once per row: every rule below reads
    # these columns instead of recomputing them.
    objects = read_objects(lines, table, skip=_PLAIN, carry=[_PLAIN, _TYPED])
    staged = objects.select(*keep, *(_field(f.name).alias(f"_json_{f.name}") for f in record_fields))
    plain, spellings = F.col(_PLAIN), _spellings(table)
    # A plain line's value: the one spelling it gives (null when absent or null), already of the column's type.
    read_typed = {
        name: F.coalesce(*(F.col(_TYPED)[_spelled_field(name, i)] for i in range(len(keys))))
        for name, keys in spellings.items()
    }
    typed = {
        f.name: F.when(plain, read_typed[f.name]).otherwise(_read_value(F.col(f"_json_{f.name}"), f.dataType))
        for f in record_fields
    }
    staged = staged.select(*staged.columns, *(value.alias(f"_typed_{name}") for name, value in typed.items()))
    flags, values = [], []
    for f in record_fields:
        json_value, typed_value = F.col(f"_json_{f.name}"), F.col(f"_typed_{f.name}")
        present = F.when(plain, typed_value.isNotNull()).otherwise(
            json_value.isNotNull() & ~F.is_variant_null(json_value)
        )
        flags += [present.alias(f"_present_{f.name}"), (present & typed_value.isNull()).alias(f"_bad_{f.name}")]
        if severity(table.model, f.name) == DESCRIPTIVE:
            # Kept as delivered: a string column holds a non-string value's JSON text; a number column, null.
            delivered = F.to_json(json_value) if isinstance(f.dataType, T.StringType) else F.lit(None)
            value = F.when(present & typed_value.isNull(), delivered).otherwise(typed_value)
        else:
            value = typed_value
        values.append(value.cast(f.dataType).alias(f.name))
    staged = staged.select(*keep, *flags, *values)

    rules: list = [
        (F.col("_text").rlike(r"^[ \t]*\z"), reasons.BLANK_LINE, None),
        (~F.col(_PLAIN) & F.col(_FIELDS).isNull(), reasons.NOT_JSON, None),
        (F.col("_duplicate").isNotNull(), reasons.DUPLICATE_KEY, F.col("_duplicate")),
    ]
    missing, wrong, invalid, warnings = [], [], [], []
    for f in record_fields:
        present, bad_type = F.col(f"_present_{f.name}"), F.col(f"_bad_{f.name}")
        if severity(table.model, f.name) == DESCRIPTIVE:
            if not f.nullable:
                warnings.append((~present, f"{f.name}:not_nullable"))
            warnings.append((bad_type, f"{f.name}:wrong_type"))
            # A value of the wrong type counts once, as wrong_type, not again against the column's checks.
            warnings += [(~bad_type & ~passes, f"{f.name}:{check}") for check, passes in checks[f.name]]
        else:
            if not f.nullable:
                missing.append((~present, reasons.MISSING_FIELD, f.name))
            wrong.append((bad_type, reasons.WRONG_TYPE, f.name))
            invalid += [(~passes, reasons.INVALID_VALUE, f"{f.name}:{check}") for check, passes in checks[f.name]]
    rules += missing + wrong + invalid
    # The first rule that holds, once per row; its name and detail are then looked up by position.
    rule = F.lit(None).cast("int")
    for position in range(len(rules), 0, -1):
        rule = F.when(rules[position - 1][0], F.lit(position)).otherwise(rule)
    names = F.array(*(F.lit(name) for _, name, _ in rules))
    details = F.array(*(F.lit(d) if d is None or isinstance(d, str) else d for _, _, d in rules))
    failed = F.array_compact(F.array(*(F.when(condition, F.lit(name)) for condition, name in warnings)))
    descriptive = failed if warnings else F.array().cast("array<string>")
    classified = staged.select(
        *table.columns, RAW, "_duplicate", rule.alias("_rule"), descriptive.alias(DESCRIPTIVE_FAILURES)
    )
    at = F.col("_rule")
    return classified.select(
        *table.columns,
        RAW,
        F.when(at.isNotNull(), F.element_at(names, at)).alias(reasons.REASON),
        F.when(at.isNotNull(), F.element_at(details, at)).cast("string").alias(reasons.DETAIL),
        DESCRIPTIVE_FAILURES,
    )


def of_files(uris: Iterable[str]) -> Column:
    """Whether a row's `source_file` is one of these files (listed names, written as tables write them)."""
    return F.col("source_file").isin(sorted({text_name(uri) for uri in uris}))


def with_file_faults(
    parsed: DataFrame, table: ZoneTable, faults: Mapping[str, FileFault], arrivals: Mapping[str, int]
) -> DataFrame:
    """`parsed` (parse_landing's output) without the lines of faulted files, and one quarantine row per
    faulted file: its URI and arrival, line_number and raw null, the file's reason and detail."""
    if not faults:
        return parsed
    kept = parsed.where(~of_files(faults))
    rows = [(text_name(uri), int(arrivals[uri]), fault.reason, fault.detail) for uri, fault in sorted(faults.items())]
    files = parsed.sparkSession.createDataFrame(
        rows, "source_file string, arrived_at long, reason string, detail string"
    )
    typed = {f.name: f.dataType for f in parsed.schema.fields}
    fault_rows = files.select(
        *(
            F.col(name) if name in files.columns else F.lit(None).cast(typed[name]).alias(name)
            for name in parsed.columns
        )
    )
    return kept.unionByName(fault_rows)
