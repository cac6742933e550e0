"""Landing zone: each feed's new raw files parsed against its contract, merged into the landing table.

A run reads only the files its ledger has not consumed (new, or rewritten since: another fingerprint), probed
first and fingerprinted again after the read (a file that cannot be read, or changed meanwhile, is one
quarantine row); it removes the rows of files that are gone or rewritten, and the rows of customers erased
since the table's last version; and the table's commit records the new ledger atomically. Lines of erased
customers are blanked in the raw files too (their new fingerprint goes into the ledger, so a blanked file is
not a new delivery). `lake.rebuild` rereads every file and replaces the table.
"""

from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from dataclasses import replace

from dagster import AssetCheckResult, AssetExecutionContext, AssetsDefinition, MaterializeResult, multi_asset
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets import reasons
from stedi_assets.assets.accounting import Measured, account_aggregates, accounted, cached, quarantine_rows
from stedi_assets.assets.inputs import changed_keys
from stedi_assets.assets.landing_files import changed_files, read_batch
from stedi_assets.assets.publishing import Output, erasure_version_of, publish, unchanged
from stedi_assets.assets.specs import zone_check_specs, zone_specs
from stedi_assets.assets.tombstones import Tombstones
from stedi_assets.checks import descriptive_nothing_new, descriptive_result, descriptive_spec
from stedi_assets.lake.blanking import BlankingError, blank_lines, readable_lines
from stedi_assets.lake.changes import Changes
from stedi_assets.lake.delta import DeltaFolder, Snapshot
from stedi_assets.lake.ledger import (
    BLANKING_PENDING,
    QUARANTINED,
    Delivery,
    LedgerEntry,
    arrival_times,
    clear_blanking_journal,
    compare,
    consumed,
    journal_blanking,
    read_blanking_journal,
    read_ledger,
    write_ledger,
)
from stedi_assets.lake.store import LEAVING
from stedi_assets.resources.lake import Lake
from stedi_assets.resources.privacy import Privacy
from stedi_assets.resources.spark import Spark
from stedi_assets.tables import CUSTOMER_ERASURE, LANDING_TABLES, QUARANTINE_OF, ZoneTable
from stedi_assets.transforms.classify import kept
from stedi_assets.transforms.erased_rows import ERASED
from stedi_assets.transforms.parsing import FileFault, of_files, parse_landing, with_file_faults


def parse_batch(
    session: SparkSession, lake: Lake, table: ZoneTable, arrivals: dict[str, int]
) -> tuple[DataFrame, dict[str, FileFault]]:
    """The classified parse of a batch of files (URI -> arrival), faulted files as one quarantine row each.

    Call `.count()` on the (cached) result before anything else reads it: the read happens then, and the
    files' fingerprints are compared with the listing's right after it.
    """
    spelled = {lake.store.storage.spark_uri(uri): uri for uri in arrivals}
    lines, faults = read_batch(session, {s: arrivals[uri] for s, uri in spelled.items()}, lake.store.storage)
    # Spark reads s3:// lakes as s3a://: lineage names files as the lake spells them.
    lakewise = lines.withColumn("source_file", F.regexp_replace("source_file", "^s3a://", "s3://"))
    return parse_landing(lakewise, table), {spelled[s]: fault for s, fault in faults.items()}


def leaving_rows(
    session: SparkSession,
    lake: Lake,
    table: ZoneTable,
    base: Snapshot | None,
    gone: list[str],
    tombstones: Tombstones | None,
    key: bytes,
) -> tuple[Output, list[tuple[str, int]]]:
    """How a table's existing rows change: rows of gone files leave, and (with `tombstones`) rows of erased
    customers. Returns the output to merge the new rows into, and the erased rows' (file, line)."""
    if base is None or (not gone and tombstones is None):
        return Output(lake.store.read_files(session, table.schema, []), base, None if base is None else []), []
    erased: list[tuple[str, int]] = []
    if tombstones is not None:
        marked = tombstones.mark(session, lake.store.read(session, table, base), key, table)
        erased = [(row.source_file, row.line_number) for row in marked.where(F.col(ERASED)).collect()]
    # A landing row is its line: the erased ones are found once, then recognized by their lineage.
    lineage = ["source_file", "line_number"]
    hits = session.createDataFrame(erased, "source_file string, line_number long").withColumn("_hit", F.lit(True))

    def leaving(rows: DataFrame) -> DataFrame:
        flagged = rows.join(F.broadcast(hits), lineage, "left")
        return flagged.withColumn(LEAVING, of_files(gone) | F.col("_hit").isNotNull()).drop("_hit")

    survivors, replaced = lake.store.survivors(session, table, base, leaving)
    return Output(survivors, base, replaced, rows_erased=len(erased)), erased


def blank_erased_lines(
    context: AssetExecutionContext,
    lake: Lake,
    delta: DeltaFolder,
    entries: dict[str, LedgerEntry],
    lines: list[tuple[str, int]],
) -> tuple[int, list[str]]:
    """Blanks the lines in the raw files and records the files' new fingerprints in the ledger entries (each
    rewrite journaled first, so that a run failing before its commit leaves the file's arrival known). A file
    that cannot be rewritten (an I/O error, a rewrite that would change another line) stays as it is, marked
    in the ledger as pending: the next run reads it again and retries. Returns the lines blanked and the files
    pending."""
    by_file: dict[str, set[int]] = defaultdict(set)
    for source, number in lines:
        if number is not None and source in entries:
            by_file[source].add(number)
    blanked, pending = 0, []
    for uri, numbers in sorted(by_file.items()):
        try:
            journal_blanking(delta, uri, entries[uri].arrived_at)
            info = blank_lines(lake.store.storage, uri, numbers)
        except (OSError, BlankingError) as error:
            context.log.warning(f"{uri}: erased lines not blanked ({type(error).__name__}); retried by the next run")
            entries[uri] = replace(entries[uri], status=BLANKING_PENDING)
            pending.append(uri)
            continue
        entries[uri] = replace(entries[uri], size=info.size, version=info.version)
        blanked += len(numbers)
    return blanked, pending


def unreadable_naming_erased(
    lake: Lake, tombstones: Tombstones, key: bytes, uris: set[str]
) -> tuple[set[str], set[str]]:
    """Which of these unreadable files (e.g. a truncated .gz, plain text named .GZ) name an erased customer: their
    lines cannot be blanked, so the files are deleted, and their quarantine rows leave with them. Also returns
    the files that could not even be searched (no permission, an I/O error): later runs retry them."""
    doomed: set[str] = set()
    unsearched: set[str] = set()
    if not tombstones.identities:
        return doomed, unsearched
    for uri in uris:
        try:
            if any(tombstones.names_anyone_in(line, key) for line in readable_lines(lake.store.storage, uri)):
                doomed.add(uri)
        except FileNotFoundError:  # gone since it was listed: the next run sees it gone
            continue
        except OSError:
            unsearched.add(uri)
    return doomed, unsearched


def quarantined_files(ledger: Mapping[str, LedgerEntry]) -> set[str]:
    """The files earlier runs consumed as unreadable (one quarantine row each)."""
    return {uri for uri, entry in ledger.items() if entry.status == QUARANTINED}


def delivered_keys(
    session: SparkSession, lake: Lake, table: ZoneTable, batch: DataFrame, base: Snapshot | None, gone: list[str]
) -> Changes:
    """The customers and devices a delivery changes: those of its lines, and those of the gone files' rows."""
    changes = changed_keys(batch, table)
    if gone and base is not None:
        leaving = lake.store.read(session, table, base).where(of_files(gone))
        changes |= changed_keys(leaving, table)
        quarantine = QUARANTINE_OF[table.name]
        quarantined = lake.store.snapshot(quarantine)
        if quarantined is not None:
            changes |= changed_keys(lake.store.read(session, quarantine, quarantined).where(of_files(gone)), quarantine)
    return changes


def land(
    context: AssetExecutionContext, lake: Lake, spark: Spark, privacy: Privacy, table: ZoneTable
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Takes up a feed's new, rewritten and gone files (every file on a rebuild), and erases in the table, its
    quarantine and the raw files what new tombstones name."""
    quarantine = QUARANTINE_OF[table.name]
    base, quarantine_base = lake.store.snapshot(table), lake.store.snapshot(quarantine)
    delta = lake.store.delta(table)
    ledger = read_ledger(delta, base)
    listed = lake.store.landing_files(table)
    rebuilt = Delivery(new=listed, gone=sorted(ledger))
    delivery = rebuilt if lake.rebuild else compare(ledger, listed, retry_blanking=True)
    key = privacy.key_bytes
    tombstones = Tombstones.load(lake, key)
    erase_existing = not lake.rebuild and base is not None and erasure_version_of(base) != tombstones.version
    context.log.info(f"{table.name}: {len(delivery.new)} new or rewritten files, {len(delivery.gone)} gone")
    if delivery.empty and not erase_existing and base is not None and quarantine_base is not None:
        yield from unchanged(lake, table, "no landing file is new, rewritten or gone, and no new erasure")
        yield descriptive_nothing_new(table)  # every check spec of the asset needs a result, or the step fails
        clear_blanking_journal(delta)  # a journaled rewrite not committed would have changed a fingerprint
        return
    session = spark.session
    arrivals = arrival_times(ledger, delivery.new, read_blanking_journal(delta))
    parsed, faults = parse_batch(session, lake, table, arrivals)
    with cached(parsed) as parsed:
        parsed.count()  # the read: the files' fingerprints are compared with the listing's right after it
        listing = {f.uri: f.fingerprint for f in delivery.new if f.uri not in faults}
        faults |= changed_files(listing, lake.store.storage.fingerprint)
        # Unreadable files naming someone erased: this batch's, and (new tombstones) those of earlier runs.
        suspects = set(faults) | (quarantined_files(ledger) if erase_existing else set())
        doomed, unsearched = unreadable_naming_erased(lake, tombstones, key, suspects)
        classified = classify_batch(session, table, parsed, faults, arrivals, tombstones, key, doomed)
        # Matching erased customers joins every line: its result is cached. With no one erased, `classified` is a
        # projection of the cached read, and a second cached copy of every line would cost more than it saves.
        with nullcontext(classified) if tombstones.empty else cached(classified) as classified:
            measured, per_file, erased_new = measure_by_file(table, classified)
            whole = lake.rebuild or base is None
            # Deleted below: an earlier run's row for such a file leaves with it, as a gone file's rows do.
            gone = [] if whole else sorted({*delivery.gone, *(doomed & ledger.keys())})
            held = tombstones if erase_existing else None
            table_output, erased_rows = leaving_rows(session, lake, table, None if whole else base, gone, held, key)
            quarantine_output, erased_quarantine = leaving_rows(
                session, lake, quarantine, None if whole else quarantine_base, gone, held, key
            )
            entries = consumed({} if lake.rebuild else ledger, delivery, arrivals, per_file, set(faults))
            erased_lines = erased_new + erased_rows + erased_quarantine
            blanked, pending = blank_erased_lines(context, lake, delta, entries, erased_lines)
            for uri in sorted(doomed):
                lake.store.storage.delete(uri)
                entries.pop(uri, None)
            for uri in sorted(unsearched & entries.keys()):
                entries[uri] = replace(entries[uri], status=BLANKING_PENDING)
                pending.append(uri)
            # Erased customers' lines change nothing downstream, and their identities must not be recorded.
            delivered = classified.where(~F.col(ERASED))
            changes = None if whole or erase_existing else delivered_keys(session, lake, table, delivered, base, gone)
            new_rows = kept(classified).select(*table.columns)
            rejected = quarantine_rows(table, classified, context.run.run_id)
            ledger_metadata = {"ledger": write_ledger(delta, entries), BLANKING_PENDING: pending}
            yield from publish(
                context,
                lake,
                table,
                measured,
                with_new_rows(table_output, new_rows, base, whole, changes, ledger_metadata),
                with_new_rows(quarantine_output, rejected, quarantine_base, whole, changes),
                metadata={
                    "files_new": len(delivery.new),
                    "files_gone": len(delivery.gone),
                    "files_quarantined": len(faults),
                    "files_in_ledger": len(entries),
                    "raw_lines_blanked": blanked,
                    "raw_files_pending_blanking": len(pending),
                    "unreadable_files_deleted": len(doomed),
                },
                checks=[descriptive_result(table, classified)],
                erasure_version=tombstones.version,
            )
            clear_blanking_journal(delta)  # the commit names the rewrites' fingerprints


def measure_by_file(table: ZoneTable, classified: DataFrame) -> tuple[Measured, dict[str, int], list[tuple[str, int]]]:
    """A batch's row account, its rows per file and its erased lines (file, line number), in one aggregation by
    file: every count of a landing table's account is a sum, so its files' counts add up to the batch's."""
    aggregates = account_aggregates(table, classified.columns)
    assert not any("unique(" in name for name in aggregates), "a distinct count does not add up across files"
    erased = F.collect_list(F.when(F.col(ERASED), F.col("line_number"))).alias("_erased")
    files = classified.groupBy("source_file").agg(*(v.alias(k) for k, v in aggregates.items()), erased).collect()
    totals = {name: sum(int(row[name] or 0) for row in files) for name in aggregates}
    per_file = {row.source_file: int(row["_total"]) for row in files}
    erased_lines = [(row.source_file, number) for row in files for number in row["_erased"]]
    return accounted(table, totals), per_file, erased_lines


def classify_batch(
    session: SparkSession,
    table: ZoneTable,
    parsed: DataFrame,
    faults: dict[str, FileFault],
    arrivals: dict[str, int],
    tombstones: Tombstones,
    key: bytes,
    doomed: set[str],
) -> DataFrame:
    """A batch's parsed lines with its faulted files as one quarantine row each, and the lines of erased customers
    (an old file delivered again) filtered as `erased` (they are blanked in the raw files too), as are the rows
    of `doomed` files (unreadable, naming someone erased: deleted)."""
    batch = tombstones.mark(session, with_file_faults(parsed, table, faults, arrivals), key, table)
    batch = batch.withColumn(ERASED, F.col(ERASED) | of_files(doomed))
    erased = F.when(F.col(ERASED), F.lit(reasons.ERASED)).otherwise(F.col(reasons.REASON))
    return batch.withColumn(reasons.REASON, erased)


def with_new_rows(
    survivors: Output,
    new_rows: DataFrame,
    base: Snapshot | None,
    whole: bool,
    changes: Changes | None,
    commit_metadata: Mapping[str, object] | None = None,
) -> Output:
    """A landing table's (or its quarantine's) output: the batch's rows beside the rows that stay (`survivors`,
    from `leaving_rows`), or, when `whole`, replacing the whole table."""
    return replace(
        survivors,
        frame=new_rows.unionByName(survivors.frame),
        base=base,
        replaced=None if whole else survivors.replaced,
        commit_metadata=commit_metadata or {},
        changes=changes,
    )


def landing_asset(table: ZoneTable) -> AssetsDefinition:
    @multi_asset(
        name=table.name,
        specs=zone_specs(table, [CUSTOMER_ERASURE]),
        check_specs=zone_check_specs(table, [descriptive_spec(table)]),
    )
    def _landing(
        context: AssetExecutionContext, lake: Lake, spark: Spark, privacy: Privacy
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        with lake.store.exclusive(table):
            yield from land(context, lake, spark, privacy, table)

    return _landing


landing_assets = [landing_asset(table) for table in LANDING_TABLES]
