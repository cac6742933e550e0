"""Tombstones on the Python side: what is recorded of a request (hashes only), how they are loaded back, and how
a text no parser can read is matched against them (the identity rule's folding: case, surrounding spaces)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import Failure
from pyspark.sql.pandas.types import to_arrow_schema

from stedi_assets.assets.tombstones import DEVICE, IDENTITY, SUBJECT, Tombstones, tombstone_rows
from stedi_assets.contracts import SURROUNDING_SPACE
from stedi_assets.resources.lake import Lake
from stedi_assets.tables import CUSTOMER_ERASURE
from stedi_assets.transforms.pseudonyms import key_fingerprint, subject_keys, tombstone

KEY, OTHER_KEY = b"test-key", b"another-key"
ANN, BOB = "ann@example.com", "bob@example.com"
SERIAL = "11111111-1111-4111-8111-111111111111"
T0 = 1_655_564_444_000
# Every character the identity rule strips around an address (one regex class: expanded here).
SPACES = [c for c in map(chr, range(0x10000)) if re.fullmatch(SURROUNDING_SPACE, c)]


def test_the_surrounding_space_class_is_what_this_test_expands() -> None:
    assert {"\t", " ", "\u00a0", "\u2000", "\u200b", "\u2060", "\u3000", "\u0085"} <= set(SPACES)
    assert len(SPACES) == 30 and "a" not in SPACES and "@" not in SPACES


def test_a_request_is_recorded_as_keyed_hashes_only() -> None:
    rows = tombstone_rows({ANN: T0, BOB: None}, [(SERIAL, T0, T0 + 1000)], KEY, now=T0 + 5)
    columns = [dict(zip(CUSTOMER_ERASURE.columns, row, strict=True)) for row in rows]
    assert sorted(r["kind"] for r in columns) == [DEVICE, IDENTITY, IDENTITY, SUBJECT, SUBJECT]
    text = repr(rows)
    subject = subject_keys([ANN], KEY)[ANN]
    for plain in (ANN, "ann", BOB, SERIAL, subject):  # no e-mail, serial or research pseudonym in the rows
        assert plain not in text
    assert {r["tombstone"] for r in columns if r["kind"] == IDENTITY} == {
        tombstone(ANN, KEY, IDENTITY),
        tombstone(BOB, KEY, IDENTITY),
    }
    assert tombstone(subject, KEY, SUBJECT) in {r["tombstone"] for r in columns if r["kind"] == SUBJECT}
    (device,) = (r for r in columns if r["kind"] == DEVICE)
    assert (device["tombstone"], device["claimed_from"], device["claimed_until"]) == (
        tombstone(SERIAL, KEY, DEVICE),
        T0,
        T0 + 1000,
    )
    assert {r["key_fingerprint"] for r in columns} == {key_fingerprint(KEY)} and KEY.decode() not in text
    assert {r["recorded_at"] for r in columns} == {T0 + 5}
    assert {r["requested_at"] for r in columns if r["kind"] == IDENTITY} == {T0, None}
    # The kind is hashed too: an identity tombstone is not the subject key, nor another kind's tombstone.
    assert len({tombstone(ANN, KEY, k) for k in (IDENTITY, DEVICE, SUBJECT)} | {subject}) == 4
    assert tombstone(ANN, KEY, IDENTITY) != tombstone(ANN, OTHER_KEY, IDENTITY)
    assert rows == tombstone_rows({BOB: None, ANN: T0}, [(SERIAL, T0, T0 + 1000)] * 2, KEY, now=T0 + 5)


def commit_tombstones(root: Path, rows: list[tuple]) -> None:
    """The tombstone table as the erasure asset commits it (here without Spark)."""
    lake = Lake(root=str(root))
    delta = lake.store.delta(CUSTOMER_ERASURE)
    schema = to_arrow_schema(CUSTOMER_ERASURE.schema)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema), buffer)
    staged = f"{delta.staging_folder('w1')}/part-0.parquet"
    delta.storage.write_bytes(staged, buffer.getvalue())
    delta.commit(schema, delta.storage.list_files(delta.staging_folder("w1")), None, None, {"write_id": "w1"})


def test_tombstones_load_as_committed_and_name_no_one(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path))
    assert Tombstones.load(lake, KEY) == Tombstones(-1) and Tombstones(-1).empty
    rows = tombstone_rows({ANN: T0}, [(SERIAL, T0, None), (SERIAL, T0 - 10, T0 - 5)], KEY, now=T0)
    commit_tombstones(tmp_path, rows)
    loaded = Tombstones.load(lake, KEY)
    assert loaded.version == 0 and not loaded.empty
    assert loaded.identities == {tombstone(ANN, KEY, IDENTITY)}
    assert loaded.subjects == {tombstone(subject_keys([ANN], KEY)[ANN], KEY, SUBJECT)}
    assert {k: sorted(v, key=str) for k, v in loaded.devices.items()} == {
        tombstone(SERIAL, KEY, DEVICE): sorted([(T0, None), (T0 - 10, T0 - 5)], key=str)
    }
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):  # the committed table holds no address
        assert b"ann@" not in path.read_bytes() and SERIAL.encode() not in path.read_bytes()


def test_tombstones_made_with_another_key_fail_at_once(tmp_path: Path) -> None:
    commit_tombstones(tmp_path, tombstone_rows({ANN: T0}, [], OTHER_KEY, now=T0))
    with pytest.raises(Failure, match="made with another pseudonym key"):
        Tombstones.load(Lake(root=str(tmp_path)), KEY)
    assert Tombstones.load(Lake(root=str(tmp_path)), OTHER_KEY).identities == {tombstone(ANN, OTHER_KEY, IDENTITY)}


ERASED_ANN = Tombstones(3, frozenset({tombstone(ANN, KEY, IDENTITY)}))


@pytest.mark.parametrize(
    "text",
    [
        '{"email": "ann@example.com", "phone": "12',  # a line cut short
        '{"email": "Ann@Example.COM"}',
        "ANN@EXAMPLE.COM",
        "name,email\nAnn,ann@example.com\n",
        '<ann@example.com>; "bob@example.com"',
        '{"user": "bob@example.com", "cc": "ann@example.com"}',
        "ann@example.com\u00a0phone 8015550100",
    ],
)
def test_an_erased_address_is_found_in_any_text(text: str) -> None:
    assert ERASED_ANN.names_anyone_in(text, KEY)


@pytest.mark.parametrize("space", SPACES, ids=[f"U+{ord(c):04X}" for c in SPACES])
def test_surrounding_spaces_the_identity_rule_strips_do_not_hide_an_address(space: str) -> None:
    assert ERASED_ANN.names_anyone_in(f'{{"email": "{space}{space}Ann@Example.com{space}"}}', KEY)
    assert ERASED_ANN.names_anyone_in(f"x,{space}ANN@example.com{space}{space},y", KEY)


@pytest.mark.parametrize(
    "text",
    [
        '{"email": "bob@example.com"}',  # not erased
        "joann@example.com",
        "ann@example.com.au",
        "ann.smith@example.com",
        '{"email": "ann@exam',  # her address cut short is not hers
        "ann at example.com",
        "",
    ],
)
def test_other_customers_and_other_addresses_are_not_matched(text: str) -> None:
    assert not ERASED_ANN.names_anyone_in(text, KEY)


def test_nothing_matches_without_tombstones_or_under_another_key() -> None:
    assert not Tombstones(-1).names_anyone_in(ANN, KEY)
    assert not ERASED_ANN.names_anyone_in(ANN, OTHER_KEY)
    erased_bob = Tombstones(0, frozenset({tombstone(BOB, KEY, IDENTITY)}))
    assert erased_bob.names_anyone_in(f"{ANN} {BOB.upper()}", KEY) and not erased_bob.names_anyone_in(ANN, KEY)
    assert not Tombstones(0, devices={tombstone(SERIAL, KEY, DEVICE): [(T0, None)]}).empty


O_NEIL = "o'neil@example.com"  # an apostrophe is valid in an address, and ends a token between punctuation
# Spellings of O_NEIL in raw lines, as real exports write them: JSON escapes of any character, in any case, cut
# short, beside other values, quoted oddly, or not JSON at all.
O_NEIL_SPELLINGS = [
    '{"email": "o\'neil@example.com"}',
    '{"email": "o\\u0027neil@example.com"}',
    '{"email": "o\'neil\\u0040example.com"}',
    '{"email": "\\u004F\\u0027NEIL\\u0040EXAMPLE.COM", "phone": "12',
    '{"email": "o\'neil@example\\u002ecom\\u00a0"}',
    '{"email": "\\t o\'neil@example.com"}',
    '{"Email": "o\'neil@example.com", "note": "say \\"hi\\" \\/ bye"}',
    '{"user": "o\'neil@example.com", "timestamp": 1, "x": 2.5}',
    "O'Neil@Example.com",
    "x,o'neil@example.com\u00a0,y",
    '[{"email": "o\'neil@example.com"}]',
]


@pytest.mark.parametrize("text", O_NEIL_SPELLINGS)
def test_every_spelling_of_an_erased_address_is_found(text: str) -> None:
    erased = Tombstones(0, frozenset({tombstone(O_NEIL, KEY, IDENTITY)}))
    assert erased.names_anyone_in(text, KEY)
    assert not ERASED_ANN.names_anyone_in(text, KEY)  # and only that address


def every_spelling_corpus() -> list[str]:
    """Raw lines for comparing the two engines: the spellings above, every white-space character after an
    address, every delimiter, broken escapes and strings, and long lines."""
    every_space = [c for c in map(chr, range(0x110000)) if c.isspace()]
    after = [*every_space, *"\"'<>(),;:[]{}@\\", "\u200b", "\ufeff", "x"]
    return [
        *O_NEIL_SPELLINGS,
        *(f"{ANN}{c}phone 801 {BOB}" for c in after),
        *(f'{{"email": "{ANN}{c}", "cc": "{BOB}"}}' for c in after),
        '{"email": "ann\\x40example.com"}',  # not a JSON escape: no decoding, no @
        '{"email": "ann\\u00"}',
        '{"email": "ann@example.com\\',
        '"\\ud83d\\ude00@example.com"',
        '{"email": "' + "a" * 100_000 + '@example.com"}',  # a long string: no regex recursion
        "",
    ]


@pytest.mark.spark
def test_spark_and_python_find_the_same_candidates_in_raw_lines(spark) -> None:
    """The erasure's raw-line matching runs in Spark (erased_rows.raw_emails) and in Python (for files no parser
    can read): both must find the same candidates in the same order, whatever the line holds."""
    from stedi_assets.transforms.erased_rows import raw_email_candidates, raw_emails

    raws = every_spelling_corpus()
    frame = spark.createDataFrame([(raw,) for raw in raws], "raw string")
    in_spark = [list(row.candidates) for row in frame.select(raw_emails().alias("candidates")).collect()]
    assert in_spark == [raw_email_candidates(raw) for raw in raws]
    assert ANN in in_spark[len(O_NEIL_SPELLINGS)] and BOB in in_spark[len(O_NEIL_SPELLINGS)]  # a tab ends it
