"""The lake: where each zone table lives under the root, and how it is read and written."""

from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from dagster import ConfigurableResource, InitResourceContext, ResourceDependency
from dagster_pyspark import LazyPySparkResource
from pydantic import PrivateAttr
from pyspark.sql import DataFrame, SparkSession

from stedi_assets.assets.landing_files import FileAccess, LocalFiles, S3Files, changed_files, read_batch
from stedi_assets.cli.sample import ensure_sample_lake
from stedi_assets.resources.storage import folder_exists, is_s3, list_files, s3_client, spark_uri, split_s3
from stedi_assets.tables import LANDING_TABLES, Zone, ZoneTable
from stedi_assets.transforms.classify import kept
from stedi_assets.transforms.landing import parse_landing, with_file_faults


class LakeRootError(RuntimeError):
    """The lake root is missing or unreadable."""


class Lake(ConfigurableResource):
    """Reads and writes zone tables under `root`, a local directory or s3://bucket/prefix (read through s3a).

    Within one run, a table written or parsed once is served from memory/Parquet instead of being
    recomputed, and everything cached for the run is released when the run ends.
    """

    root: str
    spark: ResourceDependency[LazyPySparkResource]
    # True for the built-in sample lake: generated on first use when absent.
    sample: bool = False
    _frames: dict[str, DataFrame] = PrivateAttr(default_factory=dict)
    _cached: list[DataFrame] = PrivateAttr(default_factory=list)
    _client: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.sample:
            ensure_sample_lake(Path(self.root))
        self.check_root()
        conf = self.spark.spark_config
        context.log.info(f"lake {self.root}; Spark: {conf.get('spark.remote') or conf.get('spark.master', 'default')}")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        for frame in self._cached:
            frame.unpersist()
        self._cached.clear()
        self._frames.clear()

    @property
    def session(self) -> SparkSession:
        return self.spark.spark_session

    def check_root(self) -> None:
        """Fails at once, in one line naming the path, when the root or a landing folder cannot be read."""
        client = self._s3_client()
        if client is not None:
            try:
                client.head_bucket(Bucket=split_s3(self.root)[0])
            except (BotoCoreError, ClientError) as error:
                raise LakeRootError(f"lake root {self.root} is not readable (STEDI_LAKE_ROOT): {error}") from None
        elif not Path(self.root).is_dir():
            raise LakeRootError(f"lake root {self.root} does not exist or is not a directory (STEDI_LAKE_ROOT)")
        for table in LANDING_TABLES:
            if not self.exists(table):
                raise LakeRootError(f"lake root {self.root} has no landing folder {self.location(table)}")

    def _s3_client(self) -> Any:
        """boto3's S3 client for an s3:// root, made once; None for a local root."""
        if self._client is None and is_s3(self.root):
            self._client = s3_client()
        return self._client

    def location(self, table: ZoneTable) -> str:
        """The table's folder under the root, spelled as the root is (s3:// stays s3://)."""
        return f"{self.root}/{table.path}"

    def exists(self, table: ZoneTable) -> bool:
        """Whether the table's folder exists: landing folders must; other tables have none until materialized."""
        return folder_exists(self.location(table), self._s3_client())

    def uri(self, table: ZoneTable) -> str:
        """The table's location as Spark reads it (s3:// roots become s3a://)."""
        return spark_uri(self.location(table))

    def cache(self, frame: DataFrame) -> DataFrame:
        """Caches a frame for the rest of the run."""
        self._cached.append(frame.cache())
        return frame

    def _access(self) -> FileAccess:
        client = self._s3_client()
        return LocalFiles() if client is None else S3Files(client)

    def _arrival_ms(self, uri: str, fingerprint: str) -> int:
        """When a landing file arrived: its modification time (local) or LastModified (S3), epoch ms."""
        client = self._s3_client()
        if client is None:
            return int(fingerprint.split(":")[1]) // 1_000_000
        bucket, key = split_s3(uri)
        return int(client.head_object(Bucket=bucket, Key=key)["LastModified"].timestamp() * 1000)

    def parse_landing_files(self, table: ZoneTable) -> DataFrame:
        """The classified parse of every landing file of a feed (files starting with _ or . are skipped, as in
        Hadoop); a file that cannot be read, or changed while it was read, is one quarantine row.

        Interim wiring of the landing reader, probe and parser (the lead's rewrite of this resource replaces it).
        """
        access = self._access()
        listed = {
            spark_uri(uri): fingerprint
            for uri, fingerprint in list_files(self.location(table), self._s3_client()).items()
        }
        arrivals = {uri: self._arrival_ms(uri, fingerprint) for uri, fingerprint in listed.items()}
        lines, faults = read_batch(self.session, arrivals, access)
        parsed = self.cache(parse_landing(lines, table))
        parsed.count()  # the read, before the files are fingerprinted again
        faults |= changed_files({uri: listed[uri] for uri in listed if uri not in faults}, access.fingerprint)
        return with_file_faults(parsed, table, faults, arrivals)

    def read(self, table: ZoneTable) -> DataFrame:
        """A table as a DataFrame: this run's copy if there is one; else parsed (landing) or read (Parquet)."""
        if table.name in self._frames:
            return self._frames[table.name]
        if table.zone is Zone.LANDING:
            # Landing data lives only as raw files: parse once per run, however many assets read it.
            self._frames[table.name] = self.cache(kept(self.parse_landing_files(table)).select(*table.columns))
            return self._frames[table.name]
        return self.session.read.schema(table.schema).parquet(self.uri(table))

    def write(self, table: ZoneTable, frame: DataFrame) -> None:
        """Writes a table (Parquet, replacing the previous version); landing data is never rewritten."""
        if table.zone is not Zone.LANDING:
            frame.select(*table.columns).write.mode("overwrite").parquet(self.uri(table))
            frame = self.session.read.schema(table.schema).parquet(self.uri(table))
        self._frames[table.name] = frame
