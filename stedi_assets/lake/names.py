"""How a landing file's name is written in tables (the ledger's `source_file`, a quarantine row's).

A local name that is not UTF-8 reaches Python with its bytes as lone surrogates (`os.fsdecode`), which Parquet
text and Spark cannot hold: such a name is written as its bytes in base64 behind a prefix that no path or URI
starts with, so that it names exactly one file and reads back as that file's name. Every other name is itself.
"""

from __future__ import annotations

import base64
import os

NOT_UTF8 = "not-utf8:"


def text_name(uri: str) -> str:
    """The file's name as tables write it."""
    try:
        uri.encode("utf-8")
    except UnicodeEncodeError:
        return NOT_UTF8 + base64.urlsafe_b64encode(os.fsencode(uri)).decode("ascii")
    return uri


def listed_name(text: str) -> str:
    """The file's name as the listing gives it, from `text_name`'s spelling."""
    return os.fsdecode(base64.urlsafe_b64decode(text.removeprefix(NOT_UTF8))) if text.startswith(NOT_UTF8) else text


def readable_name(uri: str) -> str:
    """The name for a person to read (never to look a file up by): undecodable bytes as \\x escapes."""
    return os.fsencode(uri).decode("utf-8", "backslashreplace")
