"""Properties of the landing read and parse over generated mixes of valid and damaged lines and files.

The oracle is the independent reference parser (`reference.classify`, `reference.file_lines`): every line is
classified as it says, every valid line arrives exactly once under its file and line number, and the rows
balance: rows in = kept + filtered + quarantined. Example counts are kept small: every example costs Spark jobs.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import uuid
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession

from stedi_assets.assets.landing_files import changed_files, probe_files, read_lines
from stedi_assets.lake.storage import LocalStorage
from stedi_assets.reasons import QUARANTINE_REASONS, REASON
from stedi_assets.tables import ACCELEROMETER_LANDING, CUSTOMER_LANDING, STEP_TRAINER_LANDING
from stedi_assets.transforms.parsing import LINES_SCHEMA, parse_landing, with_file_faults
from stedi_assets_tests import reference
from stedi_assets_tests.test_landing_files import listed_files

TABLES = {"customer": CUSTOMER_LANDING, "accelerometer": ACCELEROMETER_LANDING, "step_trainer": STEP_TRAINER_LANDING}
MS = st.integers(reference.MS_RANGE.start, reference.MS_RANGE.stop - 1)
# Printable ASCII: the contract's patterns read the same in Java and Python over it.
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
EMAIL = st.from_regex(r"[a-z]{1,6}(\.[a-z]{1,6})?@[a-z]{1,6}\.(com|org)", fullmatch=True)
ODD = st.sampled_from(
    [None, True, False, "", "text", "2022-06-18", 0, -1, 1.5, 1.0, 10**20, -(2**63) - 1, 2**31, 1e300, [], {}, {"a": 1}]
)
PROPERTIES = settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    # Shrinking reruns Spark jobs for minutes; the unshrunk example is printed, and the messages say what differs.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def _records(feed: str) -> st.SearchStrategy[dict]:
    if feed == "accelerometer":
        axis = st.one_of(st.floats(-1000, 1000), st.integers(-1000, 1000))
        return st.fixed_dictionaries({"user": EMAIL, "timestamp": MS, "x": axis, "y": axis, "z": axis})
    if feed == "step_trainer":
        serial = st.uuids().map(str)
        return st.fixed_dictionaries(
            {"sensorReadingTime": MS, "serialNumber": serial, "distanceFromObject": st.integers(0, 2**31 - 1)}
        )
    descriptive = st.one_of(TEXT, st.sampled_from(["1990-01-02", "1990-13-45", "+18015550100", "(801) 555-0100"]), ODD)
    return st.fixed_dictionaries(
        {
            "customerName": descriptive,
            "email": EMAIL,
            "phone": descriptive,
            "birthDay": descriptive,
            "serialNumber": st.uuids().map(str),
            "registrationDate": MS,
            "lastUpdateDate": MS,
            "shareWithResearchAsOfDate": st.one_of(st.none(), MS),
            "shareWithPublicAsOfDate": st.one_of(st.none(), MS, ODD),
            "shareWithFriendsAsOfDate": st.one_of(st.none(), MS, ODD),
        }
    )


def _text(pairs: list[tuple[str, object]]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}"


@st.composite
def _line(draw: st.DrawFn, feed: str) -> str:
    """A landing line: a valid record, or one damaged in one of the ways real feeds are."""
    pairs = list(draw(_records(feed)).items())
    damage = draw(
        st.sampled_from(
            [
                "none",
                "none",
                "case",
                "drop",
                "odd",
                "duplicate",
                "unknown",
                "nested",
                "cut",
                "garbage",
                "blank",
                "other",
            ]
        )
    )
    names = [k for k, _ in pairs]
    if damage == "case":
        i = draw(st.integers(0, len(pairs) - 1))
        pairs[i] = (draw(st.sampled_from([names[i].upper(), names[i].lower(), names[i].capitalize()])), pairs[i][1])
    elif damage == "drop":
        del pairs[draw(st.integers(0, len(pairs) - 1))]
    elif damage == "odd":
        i = draw(st.integers(0, len(pairs) - 1))
        pairs[i] = (names[i], draw(st.one_of(ODD, TEXT)))
    elif damage == "duplicate":
        key, value = pairs[draw(st.integers(0, len(pairs) - 1))]
        pairs.insert(draw(st.integers(0, len(pairs))), (draw(st.sampled_from([key, key.upper()])), value))
    elif damage == "unknown":
        pairs.append((draw(st.sampled_from(["note", "Note", "source_file", "r1", "kuser", ""])), draw(ODD)))
    elif damage == "nested":
        return _text(pairs)[:-1] + ',"extra":{"a":1,"a":2}}'
    text = _text(pairs)
    if damage == "cut":
        return text[: draw(st.integers(0, len(text) - 1))]
    if damage == "garbage":
        return text + draw(st.sampled_from([" x", "{}", ",", "]", "}", "] x", "}}", " ]"]))
    if damage == "blank":
        return draw(st.sampled_from(["", " ", "\t \t", "\ufeff"]))
    if damage == "other":
        return draw(st.sampled_from(["[1, 2]", "42", '"text"', "null", "{'a': 1}", '{"x": NaN}', "not json"]))
    return draw(st.sampled_from(["", "\ufeff"])) + text if draw(st.booleans()) else text


@st.composite
def _plain_looking_line(draw: st.DrawFn, feed: str) -> str:
    """A record written as the typed reading takes it or nearly (`parsing.with_plain`): numbers with few or many
    digits, negative zeros, exponents, escapes, spaces and tabs between tokens."""
    ws = st.sampled_from(["", " ", "\t", "  "])

    def number(value: float) -> str:
        shape = draw(st.sampled_from(["fixed", "fixed", "exponent", "zero", "repr"]))
        if shape == "fixed":
            return f"{value:.{draw(st.integers(0, 16))}f}"
        if shape == "exponent":
            return f"{value:.{draw(st.integers(0, 5))}e}"
        return draw(st.sampled_from(["-0", "-0.0", "0.00", "-0.000"])) if shape == "zero" else repr(value)

    def value(v: object) -> str:
        if isinstance(v, float):
            return number(v)
        if isinstance(v, str) and draw(st.booleans()):
            return json.dumps(v, ensure_ascii=True).replace("@", "\\u0040")
        return json.dumps(v)

    pairs = [f"{draw(ws)}{json.dumps(k)}{draw(ws)}:{draw(ws)}{value(v)}" for k, v in draw(_records(feed)).items()]
    return draw(ws) + "{" + ",".join(pairs) + draw(ws) + "}" + draw(ws)


@st.composite
def _file(draw: st.DrawFn, feed: str) -> tuple[bytes, str, list[str]]:
    """(bytes, suffix, lines) of a landing file; lines is None for a file no reader can use."""
    lines = draw(st.lists(_line(feed), max_size=25))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join(lines) + (ending if lines and draw(st.booleans()) else "")
    data = text.encode()
    shape = draw(st.sampled_from(["plain", "plain", "gzip", "truncated", "fake"]))
    if shape == "gzip":
        return gzip.compress(data, mtime=0), ".json.gz", lines
    if shape == "truncated":
        whole = gzip.compress(data + b"x" * 64, mtime=0)
        return whole[: len(whole) // 2], ".json.gz", None
    if shape == "fake":
        return data or b"{}", ".json.gz", None
    return data, ".json", lines


def _json(text: str | None) -> object:
    return None if text is None else json.loads(text)


def _parse_lines(spark: SparkSession, feed: str, lines: list[str]):
    rows = [("f.json", n, 1, raw) for n, raw in enumerate(lines, start=1)]
    return parse_landing(spark.createDataFrame(rows, LINES_SCHEMA), TABLES[feed]).collect()


@PROPERTIES
@given(data=st.data())
def test_every_line_is_classified_as_the_reference_classifies_it(spark: SparkSession, data: st.DataObject) -> None:
    feed = data.draw(st.sampled_from(list(TABLES)))
    lines = data.draw(st.lists(_line(feed), min_size=1, max_size=40))
    parsed = {row.line_number: row for row in _parse_lines(spark, feed, lines)}
    assert sorted(parsed) == list(range(1, len(lines) + 1))  # one row per line
    for number, line in enumerate(lines, start=1):
        reason, detail, record, failures = reference.classify(line, feed)
        row = parsed[number]
        assert (row.reason, row.detail) == (reason, detail), line
        if record is not None:
            assert sorted(row.descriptive_failures) == sorted(failures), line
            # A non-text value kept in a text column is its JSON text as Spark writes it (1e300: "1.0E300").
            as_text = {rule.split(":")[0] for rule in failures if rule.endswith(":wrong_type")}
            typed = {name: _json(row[name]) if name in as_text else row[name] for name in record}
            assert typed == {name: _json(v) if name in as_text else v for name, v in record.items()}, line


@PROPERTIES
@given(data=st.data())
def test_the_typed_reading_classifies_every_line_as_the_exact_reading(spark: SparkSession, data: st.DataObject) -> None:
    feed = data.draw(st.sampled_from(list(TABLES)))
    lines = data.draw(st.lists(st.one_of(_line(feed), _plain_looking_line(feed)), min_size=1, max_size=80))
    frame = spark.createDataFrame([("f.json", n, 1, raw) for n, raw in enumerate(lines, start=1)], LINES_SCHEMA)
    typed = parse_landing(frame, TABLES[feed]).orderBy("line_number").collect()
    exact = parse_landing(frame, TABLES[feed], typed_reading=False).orderBy("line_number").collect()
    assert len(typed) == len(lines)
    for line, typed_row, exact_row in zip(lines, typed, exact, strict=True):
        assert typed_row == exact_row, line


@PROPERTIES
@given(files=st.lists(st.tuples(st.text("ab{}[ #%+é", min_size=1, max_size=4), st.binary(max_size=300)), max_size=5))
def test_every_line_of_every_file_arrives_once_with_its_number(
    spark: SparkSession, files: list[tuple[str, bytes]]
) -> None:
    """Any bytes, any name: lines split where Hadoop splits them, numbered from 1, even across splits."""
    with tempfile.TemporaryDirectory() as folder:
        expected, batch = set(), {}
        for index, (name, content) in enumerate(files):
            path = str(Path(folder) / f"{index}{name}.json")
            # Valid UTF-8 (Spark and Python replace invalid bytes differently, and nothing here depends on it).
            data = content.decode("utf-8", errors="replace").encode()
            Path(path).write_bytes(data)
            batch[path] = index
            lines = reference.file_lines(data, path)
            expected |= {(path, n, index, raw) for n, raw in enumerate(lines, start=1)}
        spark.conf.set("spark.sql.files.maxPartitionBytes", "64")
        try:
            found = [(r.source_file, r.line_number, r.arrived_at, r.raw) for r in read_lines(spark, batch).collect()]
        finally:
            spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert len(found) == len(set(found)) and set(found) == expected


@PROPERTIES
@given(data=st.data())
def test_a_batch_accounts_for_every_line_and_every_file(spark: SparkSession, data: st.DataObject) -> None:
    feed = data.draw(st.sampled_from(list(TABLES)))
    files = data.draw(st.lists(_file(feed), min_size=1, max_size=4))
    with tempfile.TemporaryDirectory() as folder:
        written: dict[str, list[str] | None] = {}
        for index, (content, suffix, lines) in enumerate(files):
            path = Path(folder) / f"{feed}-{uuid.UUID(int=index)}{suffix}"
            path.write_bytes(content)
            written[str(path)] = lines
        listed = listed_files(folder)
        arrivals = {uri: n for n, uri in enumerate(sorted(listed))}
        faults = probe_files(listed, LocalStorage("").open)
        readable = {uri: arrivals[uri] for uri in listed if uri not in faults}
        parsed = parse_landing(read_lines(spark, readable), TABLES[feed])
        faults |= changed_files({uri: listed[uri] for uri in readable}, LocalStorage("").fingerprint)
        rows = with_file_faults(parsed, TABLES[feed], faults, arrivals).collect()

    # Unusable files, and only they, are one quarantined row each.
    assert {uri for uri, lines in written.items() if lines is None} == set(faults)
    file_rows = [row for row in rows if row.line_number is None]
    assert sorted((row.source_file, row.reason) for row in file_rows) == sorted((uri, "corrupt_file") for uri in faults)
    # Rows in (every line of every readable file, counted here) = kept + filtered + quarantined.
    lines_in = sum(len(lines) for lines in written.values() if lines is not None)
    kept = [row for row in rows if row[REASON] is None]
    quarantined = [row for row in rows if row[REASON] in QUARANTINE_REASONS]
    filtered = [row for row in rows if row[REASON] is not None and row[REASON] not in QUARANTINE_REASONS]
    assert lines_in + len(faults) == len(rows) == len(kept) + len(filtered) + len(quarantined)
    # Every line is classified once, as the reference says; every valid line arrives exactly once, with its
    # file, line number and arrival.
    expected = {
        (uri, n, arrivals[uri]): reference.classify(line, feed)[0]
        for uri, lines in written.items()
        if lines is not None
        for n, line in enumerate(lines, start=1)
    }
    found = {(row.source_file, row.line_number, row.arrived_at): row[REASON] for row in rows if row.line_number}
    assert found == expected
    valid = sorted(place for place, reason in expected.items() if reason is None)
    assert sorted((row.source_file, row.line_number, row.arrived_at) for row in kept) == valid
