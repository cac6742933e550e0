"""Progress for the long commands (`stedi run`, `stedi sample`, the benchmark): never silent for long.

`Reporter` writes two kinds of output to one stream. A line (`line`) is printed as it is: an asset started or
ended, a lake generated. A status (`status`) says how far the work is: on a terminal it rewrites one line in place
(carriage return) and is cleared before the next line is printed; in a log (not a terminal) it is printed as a
plain line only when nothing was printed for `every` seconds (15 by default), so a log shows a heartbeat at least
every 15 s and never a carriage return. `waiting` keeps a status going from a thread while the caller blocks (on
a subprocess, on a run).

`SparkStages` reads how far Spark is, in this process: the stages running, their tasks done of total, and the
rows they read from storage, from the live SparkContext's status store (the data of Spark's UI and console
progress bar). With Spark Connect there is no local SparkContext: `ConnectStages` takes the same from the
progress messages the Connect server sends to its client. Neither imports Spark: this module stays light for
`stedi sample`.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TextIO

EVERY_SECONDS = 15.0  # a log's heartbeat: with one status a second, never 30 s of silence
TICK_SECONDS = 1.0  # how often `waiting` renews its status


class Reporter:
    """Lines and one status line on `stream` (default stderr); see the module's docstring. Thread-safe."""

    def __init__(
        self,
        stream: TextIO | None = None,
        every: float = EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        tty: bool | None = None,
        width: int | None = None,
    ) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.tty = _isatty(self.stream) if tty is None else tty
        self.every = every
        self.clock = clock
        # A status longer than the terminal would wrap, and a carriage return only goes back to its last row.
        self.width = width if width is not None else shutil.get_terminal_size().columns
        self._shown = 0  # characters of the status now on the terminal's line
        self._last = clock()  # when something was last written
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        """Prints `text` as a line of its own (a terminal's status is cleared first)."""
        with self._lock:
            self._clear()
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last = self.clock()

    def status(self, text: str, keep: bool = False) -> None:
        """On a terminal, shows `text` in place of the status before; in a log, prints it if nothing was printed for
        `every` seconds, or at once with `keep` (a milestone worth a line of the log)."""
        with self._lock:
            now = self.clock()
            if self.tty:
                text = text[: max(1, self.width - 1)]
                self.stream.write("\r" + text.ljust(self._shown))
                self._shown = len(text)
            elif keep or now - self._last >= self.every:
                self.stream.write(text + "\n")
            else:
                return
            self.stream.flush()
            self._last = now

    def clear(self) -> None:
        """Removes a terminal's status (nothing in a log)."""
        with self._lock:
            self._clear()
            self.stream.flush()

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self._shown = 0

    @contextmanager
    def waiting(self, describe: Callable[[], str], tick: float = TICK_SECONDS) -> Iterator[None]:
        """While the block runs, the status `describe()` renewed every `tick` seconds from a thread (the block's
        lines still go through `line`); the status is cleared when it ends."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(tick):
                self.status(describe())

        thread = threading.Thread(target=renew, name="progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.clear()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or a closed stream
        return False


def seconds(elapsed: float) -> str:
    """An elapsed time as a status says it: '42 s', '7 min 05 s'."""
    whole = int(elapsed)
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60:02d} s"


# --- Spark ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageProgress:
    """How far Spark is: the stages running now with their tasks done of total, and the rows read from storage by
    the stages submitted since the watch began (`mark`), running or finished. `rows` is None where Spark does not
    say (Spark Connect reports bytes)."""

    stages: tuple[int, ...]
    done: int
    total: int
    rows: int | None
    read_bytes: int | None = None

    def describe(self) -> str:
        if self.stages:
            label = "stage" if len(self.stages) == 1 else "stages"
            work = f"{label} {', '.join(map(str, self.stages))}: {self.done:,}/{self.total:,} tasks"
        else:
            work = "no Spark stage running"
        if self.rows is not None:
            return f"{work}, {self.rows:,} rows read"
        if self.read_bytes is not None:
            return f"{work}, {self.read_bytes / 1e6:,.0f} MB read"
        return work


# A stage whose final count is not known yet: still to be submitted, or running.
_UNFINISHED = ("PENDING", "ACTIVE")
MISSES = 3  # a stage id the status store has not is looked for this many times, then counted as reading nothing


class SparkStages:
    """The stages of a live SparkContext (`sc`), read through py4j from its AppStatusStore: `activeStages()` (what
    Spark's console progress bar draws from) gives each running stage's tasks and its `inputRecords` (updated as
    tasks end and with each executor heartbeat); a finished stage's final count is read once with
    `lastStageAttempt`. pyspark's own StatusTracker gives tasks but not rows, hence the status store (an internal
    API of Spark: any py4j error makes `sample` return None, and the caller shows no Spark detail)."""

    def __init__(self, sc: Any, first: int | None = None, clock: Callable[[], float] = time.time) -> None:
        self._store = sc._jsc.sc().statusStore()
        self._scheduler = sc._jsc.sc().dagScheduler()
        self._clock = clock
        self._next = self._next_stage_id() if first is None else first  # stages from here on are looked at
        self._since_ms = 0  # and count when submitted from then on (epoch milliseconds)
        self._finished: dict[int, tuple[int, int]] = {}  # stage id -> (submitted, in ms; rows read)
        self._misses: dict[int, int] = {}  # stage id -> times it was not found

    def mark(self, since: float | None = None) -> None:
        """Counts rows from here on: of the stages submitted at `since` (epoch seconds, default now) or later."""
        self._since_ms = int(1000 * (self._clock() if since is None else since))
        self._finished = {sid: seen for sid, seen in self._finished.items() if seen[0] >= self._since_ms}

    def sample(self) -> StageProgress | None:
        try:
            return self._sample()
        except Exception:  # py4j's errors (a stopped context, an API that changed): no detail, never a failed run
            return None

    def _sample(self) -> StageProgress:
        active = self._store.activeStages()
        running: dict[int, tuple[int, int, int, int]] = {}  # id -> (done, total, rows, submitted ms)
        for index in range(active.size()):
            stage = active.apply(index)
            running[stage.stageId()] = (
                stage.numCompleteTasks(),
                stage.numTasks(),
                stage.inputRecords(),
                _submitted_ms(stage),
            )
        newest = self._next_stage_id()
        for sid in range(self._next, newest):  # stages created since the last look, and those not finished then
            if sid in running or sid in self._finished:
                continue
            try:
                stage = self._store.lastStageAttempt(sid)
            except Exception:  # not in the store: looked for again, then given up (dropped, or never registered)
                self._misses[sid] = self._misses.get(sid, 0) + 1
                if self._misses[sid] >= MISSES:
                    self._finished[sid] = (0, 0)
                continue
            if stage.status().toString() not in _UNFINISHED:
                self._finished[sid] = (_submitted_ms(stage), stage.inputRecords())
        while self._next < newest and self._next in self._finished:
            self._next += 1
        rows = sum(r for submitted, r in self._finished.values() if submitted >= self._since_ms)
        rows += sum(r for _, _, r, submitted in running.values() if submitted >= self._since_ms)
        return StageProgress(
            stages=tuple(sorted(running)),
            done=sum(done for done, _, _, _ in running.values()),
            total=sum(total for _, total, _, _ in running.values()),
            rows=rows,
        )

    def _next_stage_id(self) -> int:
        value = self._scheduler.nextStageId()  # py4j gives the AtomicInteger as a number
        return int(value) if isinstance(value, int) else int(value.get())


def _submitted_ms(stage: Any) -> int:
    submitted = stage.submissionTime()
    return int(submitted.get().getTime()) if submitted.isDefined() else 0


def local_spark_context() -> Any | None:
    """This process's running SparkContext, if Spark is imported and one is running (None with Spark Connect)."""
    pyspark = sys.modules.get("pyspark")
    if pyspark is None:
        return None
    sc = pyspark.SparkContext._active_spark_context
    return sc if sc is not None and getattr(sc, "_jsc", None) is not None else None


class ConnectStages:
    """A Spark Connect session's progress, as its server reports it: a handler registered with
    `session.registerProgressHandler` (pyspark 4) keeps the last report of each operation. The server sends one
    every `spark.connect.progress.reportInterval` (2 s by default) while an operation runs: its stages with tasks
    done of total and bytes read (no rows)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._operations: dict[str | None, StageProgress] = {}
        self._bytes = 0  # bytes read by the operations that ended since `mark`

    def __call__(self, stages: Iterable[Any] | None, inflight_tasks: int, operation_id: str | None, done: bool) -> None:
        running = [s for s in (stages or ()) if not s.done]
        progress = StageProgress(
            stages=tuple(sorted(s.stage_id for s in running)),
            done=sum(s.num_completed_tasks for s in running),
            total=sum(s.num_tasks for s in running),
            rows=None,
            read_bytes=sum(s.num_bytes_read for s in stages or ()),
        )
        with self._lock:
            if done:
                self._operations.pop(operation_id, None)
                self._bytes += progress.read_bytes or 0
            else:
                self._operations[operation_id] = progress

    def mark(self, since: float | None = None) -> None:
        with self._lock:
            self._bytes = 0

    def sample(self) -> StageProgress | None:
        with self._lock:
            operations = list(self._operations.values())
            read = self._bytes + sum(p.read_bytes or 0 for p in operations)
        return StageProgress(
            stages=tuple(sorted(sid for p in operations for sid in p.stages)),
            done=sum(p.done for p in operations),
            total=sum(p.total for p in operations),
            rows=None,
            read_bytes=read,
        )


def connect_session() -> Any | None:
    """The Spark Connect session this process made, if it made one (the run's resource builds it in a step)."""
    module = sys.modules.get("pyspark.sql.connect.session")
    return None if module is None else module.SparkSession._default_session


class SparkWatch:
    """This process's Spark, found once it appears (a run's Spark resource starts it in the first step that needs
    it): the local SparkContext's stages, else a Spark Connect session's progress reports, else nothing (`sample`
    gives None). `close` removes what it registered with a Connect session."""

    def __init__(self) -> None:
        sc = local_spark_context()
        # A context already running has run stages of its own: only those from now on are this watch's.
        self._source: SparkStages | ConnectStages | None = SparkStages(sc) if sc is not None else None
        self._session: Any = None
        self._since: float | None = None

    def mark(self, since: float | None = None) -> None:
        """Rows and bytes read count from `since` (epoch seconds, default now): a step's start."""
        self._since = time.time() if since is None else since
        if self._source is not None:
            self._source.mark(self._since)

    def sample(self) -> StageProgress | None:
        if self._source is None:
            self._find()
        return None if self._source is None else self._source.sample()

    def _find(self) -> None:
        if (sc := local_spark_context()) is not None:
            self._source = SparkStages(sc, first=0)  # started during the watch: every stage it ran is ours
        elif (session := connect_session()) is not None:
            handler = ConnectStages()
            session.registerProgressHandler(handler)
            self._source, self._session = handler, session
        if self._source is not None and self._since is not None:
            self._source.mark(self._since)

    def close(self) -> None:
        if self._session is not None and isinstance(self._source, ConnectStages):
            with suppress(Exception):  # the session is gone: so is its handler
                self._session.removeProgressHandler(self._source)
            self._session = None
