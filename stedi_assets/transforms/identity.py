"""Who a record or a reading belongs to: the identity key of an e-mail address, and the order of delivery."""

from __future__ import annotations

import re

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from stedi_assets.contracts import SURROUNDING_SPACE

IDENTITY_KEY = "identity_key"
# The order in which landing rows were delivered: the file's arrival, then the file and the line. Only the
# arrival and, within one file, the line say which of two rows came later; the file name only makes the order
# total, so that reruns agree.
ARRIVAL_ORDER = ("arrived_at", "source_file", "line_number")


def identity_key(email: Column | str) -> Column:
    """The customer an e-mail address names: without surrounding white or zero-width space, lower-cased.

    The one normalisation used everywhere: customer state, readings, pairing and pseudonyms. Spark's `lower`
    is Unicode case mapping independent of the JVM's locale (ICU), as Python's `str.lower`.
    """
    column = F.col(email) if isinstance(email, str) else email
    return F.lower(F.regexp_replace(column, f"^{SURROUNDING_SPACE}+|{SURROUNDING_SPACE}+$", ""))


def identities(frame: DataFrame, column: str = "email") -> DataFrame:
    """The distinct identity keys of a frame's e-mail column, as one column `identity_key`."""
    return frame.select(identity_key(column).alias(IDENTITY_KEY)).distinct()


_SURROUNDING = re.compile(f"^{SURROUNDING_SPACE}+|{SURROUNDING_SPACE}+$")


def identity_of(email: str) -> str:
    """`identity_key` in Python, for what the driver handles itself (erasure requests): the same key."""
    return _SURROUNDING.sub("", email).lower()
