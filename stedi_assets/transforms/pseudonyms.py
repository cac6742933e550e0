"""Keyed pseudonyms computed inside Spark (no Python UDF, so it also runs over Spark Connect)."""

from __future__ import annotations

import hashlib

from pyspark.sql import Column
from pyspark.sql import functions as F

_BLOCK_SIZE = 64  # SHA-256 block size in bytes (RFC 2104)


def hmac_sha256_hex(value: Column, key: bytes) -> Column:
    """HMAC-SHA256 of a string column's UTF-8 bytes, as 64 lowercase hex digits (same as Python's hmac)."""
    if len(key) > _BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK_SIZE, b"\0")
    inner_pad = bytes(b ^ 0x36 for b in key)
    outer_pad = bytes(b ^ 0x5C for b in key)
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_pad), F.encode(value, "UTF-8")), 256))
    return F.sha2(F.concat(F.lit(outer_pad), inner), 256)
