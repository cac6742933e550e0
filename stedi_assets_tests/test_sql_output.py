"""`stedi sql`'s output: text for a terminal shows every value and can never drive the terminal; csv and json
stay exact. No Spark: the rendering is plain Python over the rows a query returned."""

from __future__ import annotations

import csv
import io
import json
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from stedi_assets.cli.sql import render_text, write_csv, write_json_lines

# What a hostile feed could put in a value: ESC sequences (cursor moves, OSC window titles, screen clears), CR,
# BEL, backspace, DEL, C1 controls (the 8-bit CSI), bidi overrides, zero-width characters, line separators.
HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[1;1H\rover\bwrite\x7f\x9b31m\u202egnp.exe\u200b\u2028\u2029\ufeff\x00"
NEVER_PRINTED = {"Cc", "Cf", "Zl", "Zp"}


def unprintable(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in NEVER_PRINTED and c != "\n"]


def test_control_characters_are_shown_as_escapes_not_sent_to_the_terminal() -> None:
    text = render_text(["raw", f"col{HOSTILE}"], [(HOSTILE, 1)], max_rows=10)
    assert unprintable(text) == []
    assert text.count("\n") == 3  # header, rule, the row, the footer: the value's CR and separators broke no line
    row = text.splitlines()[2]
    assert row.startswith(r"\x1b]0;owned\u0007\x1b[2J\x1b[1;1H\rover\u0008write\u007f\u009b31m\u202egnp.exe")
    assert r"\u200b\u2028\u2029\ufeff\u0000" in row


@given(st.lists(st.text(), min_size=1, max_size=4))
def test_no_value_reaches_the_terminal_unescaped(values: list[str]) -> None:
    text = render_text([f"c{i}" for i in range(len(values))], [tuple(values)], max_rows=1)
    assert unprintable(text) == []
    assert len(text.splitlines()) == 4


def test_csv_and_json_keep_every_character() -> None:
    out = io.StringIO()
    write_csv(["raw"], [(HOSTILE,)], out)
    assert list(csv.reader(io.StringIO(out.getvalue(), newline=""))) == [["raw"], [HOSTILE]]
    out = io.StringIO()
    write_json_lines(["raw"], [(HOSTILE,)], out)
    assert json.loads(out.getvalue()) == {"raw": HOSTILE}
