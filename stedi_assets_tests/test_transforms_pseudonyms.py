"""hmac_sha256_hex computed in Spark agrees with Python's hmac module."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from stedi_assets.transforms.pseudonyms import hmac_sha256_hex

VALUES = ["alice@example.com", "", "zoë@exämple.com", "用户@例子.中国", "emoji😀@example.com"]


@pytest.mark.parametrize(
    "key",
    [b"", b"k", b"\x00\xff" * 16, bytes(range(64)), bytes(range(65)), b"long key " * 20],
    ids=["empty", "one-byte", "binary-32", "block-size-64", "block-size-plus-one-65", "long-180"],
)
def test_hmac_sha256_hex_equals_pythons_hmac(spark: SparkSession, key: bytes) -> None:
    values = spark.createDataFrame([(value,) for value in VALUES], "value string")
    actual = dict(values.select("value", hmac_sha256_hex(F.col("value"), key).alias("mac")).collect())
    assert actual == {value: hmac.new(key, value.encode(), hashlib.sha256).hexdigest() for value in VALUES}
