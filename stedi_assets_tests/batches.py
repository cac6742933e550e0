"""Many test scenarios in one classification.

A classification costs seconds of planning and tens of Spark jobs whatever its rows, so a test module's
scenarios run together: each `batched` test yields its `Scenario` (the records it classifies and the settings it
classifies them with) and receives its own classified rows, as a frame, after one classification of every
scenario of the module that has the same classification and settings.

Within one classification each scenario has its own identities, so that no rule can see two scenarios as one
customer, device or file: scenario n's e-mails get `@scenario<n>.` for `@` (lower-case, inside the address: the
identity key neither trims nor lower-cases it away), the first four digits of its UUID-shaped serials become n
(a valid serial stays valid, an invalid one invalid), and its source files and the pseudonyms it hands the
classification start with `scenario<n>/` (files keep their order among themselves). Raw lines are rewritten the
same way, as text. The classified rows are split by the tag they carry and every string in them is mapped back,
so a test sees exactly what it would see alone. A scenario whose identities cannot all be tagged (an address
without `@`, an escape in a raw line that spells `@` or a serial another way, a value that already says
`scenario`) runs alone, unchanged. A row-wise classification (parse_landing) only needs its files tagged.
"""

from __future__ import annotations

import inspect
import json
import re
from collections import defaultdict
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from stedi_assets.transforms.identity import identity_of
from stedi_assets_tests.builders import Record

_MARK = "scenario"
_TAGGED = re.compile(rf"{_MARK}(\d+)[./]")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Keys (lower-cased, as the landing parser and the quarantine reader read them) whose values are identities.
_EMAIL_KEYS = frozenset({"email", "user"})
_SERIAL_KEY = "serialnumber"
_IDENTITY_KEY_PATTERN = re.compile("email|user|serialnumber", re.IGNORECASE)
# Values made the scenario's own by a `scenario<n>/` prefix: source files, and the pseudonyms a classification is
# handed (the only trace of their scenario some classified rows carry).
_PREFIXED = frozenset({"source_file", "subject_key"})


@dataclass(frozen=True)
class Scenario:
    """What a test classifies, as data: `classification(spark, inputs, *settings)` is the classified frame.

    `inputs` are named lists of records (a landing table's records with their lineage: see `builders.landed`);
    scenarios with the same classification and settings can run as one, their inputs concatenated by name.
    `row_wise`: the classification decides each row by itself alone (parse_landing), so only the scenario's
    source files are made its own (to split the rows); its lines are classified exactly as written."""

    classification: Callable[..., DataFrame]
    inputs: Mapping[str, Sequence[Record]]
    settings: tuple[object, ...] = ()
    row_wise: bool = False

    @property
    def group(self) -> tuple[object, ...]:
        return (self.classification, *self.settings)


# A batched test: yields its Scenario, is sent its classified frame.
ScenarioTest = Generator[Scenario, DataFrame, None]


class _Unsafe(Exception):
    """A scenario whose identities cannot all carry its tag: it runs alone."""


@dataclass
class _Namespace:
    """Scenario `number`'s own identities, and the way back."""

    number: int
    files_only: bool  # see Scenario.row_wise
    serials: dict[str, str] = field(default_factory=dict)  # tagged -> as the test wrote it

    @property
    def email_tag(self) -> str:
        return f"@{_MARK}{self.number}."

    @property
    def prefix(self) -> str:
        return f"{_MARK}{self.number}/"

    def _serial(self, serial: str) -> str:
        if self.number > 9999:  # the tag must take the place of exactly four hex digits
            raise _Unsafe(f"scenario {self.number} has no four-digit serial tag")
        tagged = f"{self.number:04d}{serial[4:]}"
        if self.serials.setdefault(tagged, serial) != serial:
            raise _Unsafe(f"serials {serial} and {self.serials[tagged]} would both be {tagged}")
        return tagged

    def tag(self, key: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if _MARK in value.lower():
            raise _Unsafe(f"{value!r} already says {_MARK}")
        if key in _PREFIXED:
            return self.prefix + value
        if self.files_only:
            return value
        return _UUID.sub(lambda match: self._serial(match.group()), value.replace("@", self.email_tag))

    def untag(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.replace(self.email_tag, "@").replace(self.prefix, "")
        for tagged, serial in self.serials.items():
            value = value.replace(tagged, serial)
        return value

    def check(self, key: str, value: Any) -> None:
        """Raises _Unsafe unless every identity in the (tagged) value carries this scenario's tag."""
        if not isinstance(value, str) or (self.files_only and key not in _PREFIXED):
            return
        if value.count("@") != value.count(self.email_tag):
            raise _Unsafe(f"{value!r} has an untagged @")
        if key.lower() in _EMAIL_KEYS and self.email_tag not in value:
            raise _Unsafe(f"the address {value!r} has no @ to tag")
        serials = _UUID.findall(value)
        if key.lower() == _SERIAL_KEY and serials != [value]:
            raise _Unsafe(f"the serial {value!r} is not UUID-shaped")
        if any(serial not in self.serials for serial in serials):
            raise _Unsafe(f"{value!r} has an untagged serial")
        if key in _PREFIXED and not value.startswith(self.prefix):
            raise _Unsafe(f"the {key} {value!r} is untagged")


class _JsonObject(list[tuple[str, Any]]):
    """A decoded JSON object as its (key, value) pairs: a repeated key stays repeated."""


def _pairs(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every (key, value) of a decoded JSON value, nested ones included; an array's items under its key."""
    if isinstance(value, _JsonObject):
        for inner_key, inner in value:
            yield from _pairs(inner, inner_key)
    elif isinstance(value, list):
        for item in value:
            yield from _pairs(item, key)
    else:
        yield key, value


def _fields(record: Record) -> Iterator[tuple[str, Any]]:
    """A record's (key, value) pairs, and its raw line's as a JSON reader reads them (escapes decoded, keys in any
    case, repeated keys kept); raises _Unsafe for a raw line that only a more lenient reader could read, if an
    escape or an identity's key may hide in it."""
    for key, value in record.items():
        yield key, value
        if key != "raw" or not isinstance(value, str):
            continue
        try:
            line = json.loads(value.lstrip("\ufeff"), object_pairs_hook=_JsonObject)
        except ValueError:
            if "\\" in value or _IDENTITY_KEY_PATTERN.search(value):
                raise _Unsafe(f"the unreadable line {value!r} may name an identity") from None
            continue
        yield from _pairs(line)


def _identities(inputs: Mapping[str, Sequence[Record]], row_wise: bool) -> set[str]:
    """Every identity the (tagged) inputs name that must be their scenario's own: source files, and unless the
    classification is row-wise, e-mails (by identity key) and serials."""
    found = set()
    for records in inputs.values():
        for record in records:
            for key, value in record.items() if row_wise else _fields(record):
                if not isinstance(value, str):
                    continue
                if key in _PREFIXED:
                    found.add(value)
                elif not row_wise:
                    found.update(_UUID.findall(value))
                    if key.lower() in _EMAIL_KEYS:
                        found.add(identity_of(value))
    return found


def _namespaced(scenario: Scenario, number: int) -> tuple[dict[str, list[Record]], _Namespace]:
    """The scenario's inputs with its own identities (raises _Unsafe when they cannot all be tagged)."""
    namespace = _Namespace(number, scenario.row_wise)
    inputs = {
        name: [{key: namespace.tag(key, value) for key, value in record.items()} for record in records]
        for name, records in scenario.inputs.items()
    }
    for records in inputs.values():
        for record in records:
            for key, value in record.items() if scenario.row_wise else _fields(record):
                namespace.check(key, value)
    return inputs, namespace


def classified_together(spark: SparkSession, scenarios: Sequence[Scenario]) -> list[DataFrame]:
    """Each scenario's classified rows, as its own frame, from one classification of them all (one group)."""
    if any(scenario.group != scenarios[0].group for scenario in scenarios):
        raise ValueError("scenarios classified together need the same classification and settings")
    first = scenarios[0]
    if len(scenarios) == 1:
        classified = first.classification(spark, first.inputs, *first.settings)
        return [spark.createDataFrame(classified.collect(), classified.schema)]
    namespaced = [_namespaced(scenario, number) for number, scenario in enumerate(scenarios, start=1)]
    seen: dict[str, int] = {}
    for number, (inputs, _) in enumerate(namespaced, start=1):
        for identity in _identities(inputs, first.row_wise):
            if seen.setdefault(identity, number) != number:
                raise AssertionError(f"scenarios {seen[identity]} and {number} share {identity!r}")
    merged: dict[str, list[Record]] = defaultdict(list)
    for inputs, _ in namespaced:
        for name, records in inputs.items():
            merged[name].extend(records)
    classified = first.classification(spark, merged, *first.settings)
    rows_of: dict[int, list[tuple[Any, ...]]] = {number: [] for number in range(1, len(scenarios) + 1)}
    for row in classified.collect():
        owners = {int(number) for value in row if isinstance(value, str) for number in _TAGGED.findall(value)}
        if len(owners) != 1 or not owners <= rows_of.keys():
            raise AssertionError(f"a classified row carries no single scenario's tag: {row}")
        namespace = namespaced[owners.pop() - 1][1]
        rows_of[namespace.number].append(tuple(namespace.untag(value) for value in row))
    return [spark.createDataFrame(rows_of[number], classified.schema) for number in sorted(rows_of)]


def _batches(scenarios: Sequence[Scenario]) -> list[list[int]]:
    """The scenarios (by index) grouped into classifications: those that can be tagged together, and each one
    that cannot alone."""
    groups: list[list[int]] = []  # settings need not be hashable (a ZoneTable holds a dict): compared by equality
    alone = []
    for index, scenario in enumerate(scenarios):
        group = next((group for group in groups if scenarios[group[0]].group == scenario.group), [])
        try:
            _namespaced(scenario, len(group) + 1)
        except _Unsafe:
            alone.append([index])
            continue
        if not group:
            groups.append(group)
        group.append(index)
    return [*groups, *alone]


@dataclass
class _ModuleBatches:
    """A test module's declared scenarios (with the node id of the test that declared each, in the order it
    yields them), classified one batch at a time, when a test first asks for one of the batch's."""

    declared: list[tuple[str, Scenario]]
    batches: list[list[int]]
    results: dict[int, DataFrame] = field(default_factory=dict)

    def classified(self, spark: SparkSession, nodeid: str, scenarios: Sequence[Scenario]) -> list[DataFrame]:
        indices = [index for index, (owner, _) in enumerate(self.declared) if owner == nodeid]
        if [self.declared[index][1] for index in indices] != list(scenarios):
            raise RuntimeError(f"{nodeid} yields other scenarios than it declared: they must be data, fixed")
        for index in indices:
            if index not in self.results:
                batch = next(batch for batch in self.batches if index in batch)
                frames = classified_together(spark, [self.declared[member][1] for member in batch])
                self.results.update(zip(batch, frames, strict=True))
        return [self.results[index] for index in indices]


# Each batched test as pytest runs it -> the test as written (not `__wrapped__`: pytest would follow it to a
# generator, which it refuses as a test).
_BATCHED: dict[Callable[..., None], Callable[..., Generator[Any, Any, None]]] = {}
_MODULES: dict[str, _ModuleBatches] = {}


def _declared_by(item: pytest.Function, spark: SparkSession) -> tuple[Scenario, ...]:
    test = _BATCHED[item.obj]
    callspec = getattr(item, "callspec", None)
    given = {"spark": spark, **(callspec.params if callspec else {})}
    steps = test(**{name: given[name] for name in inspect.signature(test).parameters})
    declared = next(steps)
    steps.close()
    return declared if isinstance(declared, tuple) else (declared,)


def _module_batches(request: pytest.FixtureRequest, spark: SparkSession) -> _ModuleBatches:
    """The running module's batches, declared from every selected test of the module when its first one runs."""
    module = request.module.__name__
    if module not in _MODULES:
        items = [
            item
            for item in request.session.items
            if isinstance(item, pytest.Function) and item.module is request.module and item.obj in _BATCHED
        ]
        declared = [(item.nodeid, scenario) for item in items for scenario in _declared_by(item, spark)]
        _MODULES[module] = _ModuleBatches(declared, _batches([scenario for _, scenario in declared]))
    return _MODULES[module]


def batched(test: Callable[..., Generator[Any, Any, None]]) -> Callable[..., None]:
    """A test that yields its Scenario (or a tuple of them) and is sent its classified frame (or a tuple of them),
    classified together with the other scenarios of its module. Its parameters are its parametrize arguments and
    `spark`: what it does before it yields runs once more, when its module's scenarios are declared, so a test
    that needs Spark for more than its scenario does that after it yields."""
    parameters = [name for name in inspect.signature(test).parameters if name != "spark"]
    takes_spark = len(parameters) < len(inspect.signature(test).parameters)

    def run(spark: SparkSession, request: pytest.FixtureRequest, **arguments: Any) -> None:
        steps = test(**arguments, **({"spark": spark} if takes_spark else {}))
        declared = next(steps)
        scenarios = declared if isinstance(declared, tuple) else (declared,)
        frames = _module_batches(request, spark).classified(spark, request.node.nodeid, scenarios)
        try:
            steps.send(tuple(frames) if isinstance(declared, tuple) else frames[0])
        except StopIteration:
            return
        raise TypeError(f"{test.__name__} yields more than once: yield its scenarios together, as a tuple")

    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in ("spark", "request", *parameters)]
    )
    for name in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(run, name, getattr(test, name))
    run.__dict__.update(test.__dict__)  # marks applied before this decorator
    _BATCHED[run] = test
    return run
