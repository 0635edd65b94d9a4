"""The rules of CloudWatch's Embedded Metric Format ("Specification: Embedded metric format" in the
Amazon CloudWatch user guide), checked on one log line: what CloudWatch Logs needs to turn the
line into metrics instead of dropping it (it reports such lines in the AWS/Logs namespace)."""

from __future__ import annotations

import json
import time
from typing import Any

# The specification's units (those of MetricDatum).
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
    "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
    "Count/Second", "None",
}
MAX_EVENT_BYTES = 1024 * 1024
MAX_DIMENSIONS_PER_SET = 30
MAX_METRICS_PER_DIRECTIVE = 100
MAX_VALUES_PER_METRIC = 100
MAX_DIMENSION_VALUE_CHARS = 1024
MAX_NAMESPACE_CHARS = 1024
# CloudWatch refuses metric data older than two weeks or more than two hours ahead.
MAX_AGE_MS = 14 * 24 * 3600 * 1000
MAX_AHEAD_MS = 2 * 3600 * 1000


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_emf(line: str) -> dict:
    """Parse `line` and assert it is a valid EMF record; return the parsed object."""
    assert len(line.encode()) <= MAX_EVENT_BYTES
    assert "\n" not in line.strip(), "one record per line"
    record = json.loads(line)
    assert isinstance(record, dict), "the root node is a JSON object"

    metadata = record.get("_aws")
    assert isinstance(metadata, dict), "the root node has the _aws metadata object"
    assert set(metadata) == {"Timestamp", "CloudWatchMetrics"}, f"unknown metadata members: {metadata}"
    timestamp = metadata["Timestamp"]
    assert isinstance(timestamp, int) and not isinstance(timestamp, bool), "Timestamp is an integer"
    now_ms = time.time() * 1000
    # Milliseconds since the epoch: a time stamp in seconds would be in 1970.
    assert now_ms - MAX_AGE_MS < timestamp < now_ms + MAX_AHEAD_MS, f"Timestamp {timestamp} is not now in ms"

    directives = metadata["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives, "CloudWatchMetrics is a non-empty array"
    for directive in directives:
        check_directive(directive, record)
    return record


def check_directive(directive: Any, record: dict) -> None:
    assert isinstance(directive, dict), directive
    assert set(directive) == {"Namespace", "Dimensions", "Metrics"}, f"members of a directive: {sorted(directive)}"
    namespace = directive["Namespace"]
    assert isinstance(namespace, str) and 1 <= len(namespace) <= MAX_NAMESPACE_CHARS, namespace
    assert namespace.isascii() and not namespace.startswith("AWS/"), namespace

    dimension_sets = directive["Dimensions"]
    assert isinstance(dimension_sets, list) and dimension_sets, "Dimensions is a non-empty array of sets"
    for dimension_set in dimension_sets:
        assert isinstance(dimension_set, list) and len(dimension_set) <= MAX_DIMENSIONS_PER_SET, dimension_set
        assert len(set(dimension_set)) == len(dimension_set), f"a key twice in {dimension_set}"
        for key in dimension_set:
            assert isinstance(key, str) and key, key
            assert key in record, f"the dimension {key!r} names no member of the root node"
            value = record[key]
            assert isinstance(value, str), f"the dimension {key!r} is {value!r}, not a string"
            # CloudWatch's own rules for a dimension value.
            assert 1 <= len(value) <= MAX_DIMENSION_VALUE_CHARS and value.strip(), f"{key}={value!r}"
            assert value.isascii() and value.isprintable(), f"{key}={value!r}"

    definitions = directive["Metrics"]
    assert isinstance(definitions, list) and 1 <= len(definitions) <= MAX_METRICS_PER_DIRECTIVE
    names = [definition.get("Name") for definition in definitions]
    assert len(set(names)) == len(names), f"a metric twice in {names}"
    for definition in definitions:
        assert isinstance(definition, dict), definition
        assert set(definition) <= {"Name", "Unit", "StorageResolution"}, f"members of {definition}"
        name = definition["Name"]
        assert isinstance(name, str) and name, definition
        assert name in record, f"the metric {name!r} names no member of the root node"
        value = record[name]
        if isinstance(value, list):
            assert 1 <= len(value) <= MAX_VALUES_PER_METRIC and all(map(is_number, value)), f"{name}={value!r}"
        else:
            assert is_number(value), f"the metric {name!r} is {value!r}, not a number"
        if "Unit" in definition:
            assert definition["Unit"] in UNITS, definition
        if "StorageResolution" in definition:
            assert definition["StorageResolution"] in (1, 60), definition
        assert name not in {key for dimension_set in directive["Dimensions"] for key in dimension_set}


def dimensions(record: dict) -> dict[str, str]:
    """Every dimension of the record, by key."""
    return {
        key: record[key]
        for directive in record["_aws"]["CloudWatchMetrics"]
        for dimension_set in directive["Dimensions"]
        for key in dimension_set
    }


def metrics(record: dict) -> dict[str, tuple[Any, str | None]]:
    """Every metric of the record: its value and unit, by name."""
    return {
        definition["Name"]: (record[definition["Name"]], definition.get("Unit"))
        for directive in record["_aws"]["CloudWatchMetrics"]
        for definition in directive["Metrics"]
    }
