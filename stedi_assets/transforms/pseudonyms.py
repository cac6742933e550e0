"""Keyed pseudonyms, computed in the driver: the key never enters a Spark plan, conf or event log.

Spark prints literals in full in its plans (UI, `explain()`, event logs), so a key used in a DataFrame expression
can be read there. Instead the driver computes HMAC-SHA256 with Python's `hmac` for the few distinct subjects
(`subject_keys`) and hands Spark only the result, a small identity_key -> subject_key table joined in as data
(`subjects_frame`). No transform receives the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from pyspark.sql import DataFrame, SparkSession

from stedi_assets.transforms.identity import IDENTITY_KEY

SUBJECT_KEY = "subject_key"
SUBJECTS_SCHEMA = f"{IDENTITY_KEY} string, {SUBJECT_KEY} string"
_FINGERPRINT_LABEL = b"stedi subject_key fingerprint v1"
_FINGERPRINT_ROUNDS = 100_000


def subject_keys(identity_keys: Iterable[str], key: bytes) -> dict[str, str]:
    """identity key -> HMAC-SHA256(key, UTF-8 of the identity key) as 64 lowercase hex digits.

    Takes identity keys (`identity.identity_key`, already normalised), so every spelling of a customer's e-mail
    gets the same pseudonym.
    """
    return {k: hmac.new(key, k.encode("utf-8"), hashlib.sha256).hexdigest() for k in set(identity_keys)}


def subjects_frame(spark: SparkSession, subjects: dict[str, str]) -> DataFrame:
    """The mapping as the small frame `classify_machine_learning_curated` joins: identity_key, subject_key."""
    return spark.createDataFrame(sorted(subjects.items()), SUBJECTS_SCHEMA)


def key_fingerprint(key: bytes) -> str:
    """16 hex digits that change with the key and reveal nothing of it, for run metadata.

    PBKDF2-HMAC-SHA256 of a fixed label keyed by the key, many rounds: a keyed hash (no one without the key can
    compute it) that is slow to test guesses against, so it adds nothing to what a weak key already exposes.
    """
    return hashlib.pbkdf2_hmac("sha256", key, _FINGERPRINT_LABEL, _FINGERPRINT_ROUNDS).hex()[:16]


def tombstone(value: str, key: bytes, kind: str) -> str:
    """What an erasure keeps of a person: a keyed hash of their identity key (kind "identity") or of a device's
    serial (kind "device"), never the value itself. The kind is part of the hashed text, so a tombstone never
    equals the person's subject_key (erasure records cannot be linked to research rows) nor another kind's."""
    return hmac.new(key, f"stedi erasure {kind}\0{value}".encode(), hashlib.sha256).hexdigest()
