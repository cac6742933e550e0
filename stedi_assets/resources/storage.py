"""Listing landing files on a local or s3:// lake root, for the root check and the sensors (no Spark needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster_aws.s3 import S3Resource


def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def split_s3(uri: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ("bucket", "some/prefix")."""
    bucket, _, prefix = uri.split("://", 1)[1].partition("/")
    return bucket, prefix.strip("/")


def spark_uri(uri: str) -> str:
    """The URI Spark reads: Hadoop's S3 filesystem is s3a://."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri


def s3_client() -> Any:
    """A boto3 S3 client configured from the standard AWS environment (endpoint, keys, region or profile)."""
    return S3Resource().get_client()


def _hidden(name: str) -> bool:
    return name.startswith(("_", "."))


def list_files(folder: str, client: Any | None = None) -> dict[str, str]:
    """Every file under a folder (recursively, skipping _ and . names as Hadoop does) -> a fingerprint that
    changes when the file is rewritten: size and modification time locally, size and ETag on S3."""
    if is_s3(folder):
        bucket, prefix = split_s3(folder)
        client = client or s3_client()
        found = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
            for obj in page.get("Contents", []):
                relative = obj["Key"][len(prefix) + 1 :]
                if not any(_hidden(part) for part in relative.split("/")):
                    found[f"s3://{bucket}/{obj['Key']}"] = f"{obj['Size']}:{obj['ETag'].strip(chr(34))}"
        return found
    root = Path(folder)
    if not root.is_dir():
        return {}
    return {
        str(path): f"{stat.st_size}:{stat.st_mtime_ns}"
        for path in sorted(root.rglob("*"))
        if path.is_file() and not any(_hidden(part) for part in path.relative_to(root).parts)
        for stat in [path.stat()]
    }


def folder_exists(folder: str, client: Any | None = None) -> bool:
    if is_s3(folder):
        bucket, prefix = split_s3(folder)
        client = client or s3_client()
        return client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/", MaxKeys=1).get("KeyCount", 0) > 0
    return Path(folder).is_dir()
