"""Fetch the jars Spark's s3a filesystem needs, from PyPI (Maven is unreachable on these machines).

    python -m stedi_assets.s3a_jars [--cache DIR]   prints the comma-separated jar paths for spark.jars

pyspark bundles the Hadoop client but not hadoop-aws. Neither PyPI nor Debian ships hadoop-aws as a jar;
the source distribution of h2o 3.46.0.12 (Apache-2.0) carries a fat jar that contains hadoop-aws 3.3.6 and
the AWS SDK v1 bundle it was built against, under their own package names. This extracts exactly those
entries into two jars, once per machine (the cache is outside the clone), and checks their content.
With Maven access, set spark.jars.packages=org.apache.hadoop:hadoop-aws:<pyspark's Hadoop version> instead.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

SOURCE = "h2o==3.46.0.12"
FAT_JAR = "h2o-3.46.0.12/h2o/backend/bin/h2o.jar"
DEFAULT_CACHE = Path.home() / ".cache" / "stedi" / "s3a-jars"
JARS = {
    "hadoop-aws-3.3.6.jar": ("org/apache/hadoop/fs/s3a/", "org/apache/hadoop/fs/s3native/"),
    "aws-java-sdk-bundle-1.12.705.jar": ("com/amazonaws/", "mime.types", "com/fasterxml/jackson/dataformat/cbor/"),
}
# sha256 over the two jars' entry names and contents, as extracted from SOURCE.
CONTENT_SHA256 = "a9eaed663c1cec00952ceef1624749dd44ca786d5b0d5b0dd4ecfec41ed0ecdc"


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        with zipfile.ZipFile(path) as jar:
            for name in sorted(jar.namelist()):
                h.update(name.encode())
                h.update(jar.read(name))
    return h.hexdigest()


def _extract(cache: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", SOURCE, "-d", tmp],
            check=True,
        )
        (sdist,) = Path(tmp).glob("h2o-*.tar.gz")
        with tarfile.open(sdist) as archive:
            member = archive.extractfile(FAT_JAR)
            assert member is not None, f"{FAT_JAR} missing from {sdist.name}"
            fat = Path(tmp) / "h2o.jar"
            fat.write_bytes(member.read())
        cache.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(fat) as source:
            names = source.namelist()
            for jar_name, prefixes in JARS.items():
                partial = cache / f"{jar_name}.part"
                with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as target:
                    for name in names:
                        if name.startswith(prefixes):
                            target.writestr(name, source.read(name))
                partial.rename(cache / jar_name)


@functools.cache
def s3a_jars(cache: Path = DEFAULT_CACHE) -> list[Path]:
    """The two jars, fetched and extracted on first use and checked against the pinned digest (once a process:
    Spark settings are built more than once)."""
    paths = [cache / name for name in JARS]
    if not all(p.exists() for p in paths):
        _extract(cache)
    digest = _digest(paths)
    if digest != CONTENT_SHA256:
        raise RuntimeError(f"the jars in {cache} are not the pinned ones (sha256 {digest}): delete {cache} and rerun")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    print(",".join(str(p) for p in s3a_jars(parser.parse_args().cache)))


if __name__ == "__main__":
    main()
