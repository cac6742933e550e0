"""Who a record or a reading belongs to: the identity key of an e-mail address, and the order of delivery."""

from __future__ import annotations

import re
import string

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from stedi_assets.contracts import SURROUNDING_SPACE

IDENTITY_KEY = "identity_key"
# The order in which landing rows were delivered: the file's arrival, then the file and the line. Only the
# arrival and, within one file, the line say which of two rows came later; the file name only makes the order
# total, so that reruns agree.
ARRIVAL_ORDER = ("arrived_at", "source_file", "line_number")
# What the identity key drops: a run of white or zero-width space at either end. One pattern, read the same
# way by Java's and Python's regular expressions (an explicit class of BMP characters, no `\s`, no flags).
_SURROUNDING_PATTERN = f"^{SURROUNDING_SPACE}+|{SURROUNDING_SPACE}+$"
_SURROUNDING = re.compile(_SURROUNDING_PATTERN)
_ASCII_UPPER, _ASCII_LOWER = string.ascii_uppercase, string.ascii_lowercase
_TO_ASCII_LOWER = str.maketrans(_ASCII_UPPER, _ASCII_LOWER)


def identity_key(email: Column | str) -> Column:
    """The customer an e-mail address names: without surrounding white or zero-width space, A-Z lower-cased.

    The one normalisation used everywhere: customer state, readings, pairing, pseudonyms and erasure
    (`identity_of` is the same key in Python). Only ASCII letters change case; every other character is kept as
    delivered. Java's and Python's Unicode tables case other characters differently ('İ', the Kelvin sign, the
    final sigma) and change with their versions, while identity keys are kept (tombstones, subject keys): a
    key must be the same in Spark and in Python, today and after an upgrade. Mail systems agree on case only
    for ASCII too (a local part is case-sensitive by RFC 5321; an internationalised domain is mapped by IDNA,
    not by lower-casing), so two addresses that differ in the case of a non-ASCII letter stay two customers.
    """
    column = F.col(email) if isinstance(email, str) else email
    return F.translate(F.regexp_replace(column, _SURROUNDING_PATTERN, ""), _ASCII_UPPER, _ASCII_LOWER)


def identities(frame: DataFrame, column: str = "email") -> DataFrame:
    """The distinct identity keys of a frame's e-mail column, as one column `identity_key`."""
    return frame.select(identity_key(column).alias(IDENTITY_KEY)).distinct()


def identity_of(email: str) -> str:
    """`identity_key` in Python, for what the driver handles itself (erasure requests, tombstones): the same
    key for every string (test_identity_agreement)."""
    return _SURROUNDING.sub("", email).translate(_TO_ASCII_LOWER)
