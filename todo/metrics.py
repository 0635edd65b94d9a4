"""CloudWatch metrics from the access log line, at no extra call and no extra round trip.

On Lambda each access line is also a CloudWatch Embedded Metric Format (EMF) record: CloudWatch
Logs reads the `_aws` member as it ingests the line and publishes the values it names as metrics.
Under uvicorn the line stays plain JSON. The format: "Specification: Embedded metric format" in
the Amazon CloudWatch user guide.

Every metric is published twice: for the service (dimension `Service`: the Lambda function's
name, so each stage has its own), and per route *template* and method (`Service`, `Route`,
`Method`). Never the raw path: a user id in a dimension would make one metric per user. Every
dimension value comes from a closed set: the app's route templates, the `NO_ROUTE` placeholder,
the methods in `METHODS` or `OTHER_METHOD`.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

NAMESPACE = "TodoApi"
# The route of a request that no route took: an unknown path, or an answer given before routing
# (a 413 on the declared length, a refused CORS preflight).
NO_ROUTE = "(no route)"
# Clients choose the method; anything unusual is counted under one value.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
OTHER_METHOD = "OTHER"
# When the Lambda context does not say which function this is.
DEFAULT_SERVICE = "todo-api"

# name -> unit. Each count is 0 or 1 per request, so its Sum is a number of requests and its
# Average a share of them (the 5xx rate is the Average of ServerErrors).
METRICS = {
    "Requests": "Count",
    "Latency": "Milliseconds",
    "ClientErrors": "Count",
    "ServerErrors": "Count",
    "DatabaseUnavailable": "Count",
    "ColdStart": "Count",
    "ResponseBodyBytes": "Bytes",
}
# Every metric for the whole service, and again per route and method.
DIMENSION_SETS = [["Service"], ["Service", "Route", "Method"]]
DIRECTIVE = {
    "Namespace": NAMESPACE,
    "Dimensions": DIMENSION_SETS,
    "Metrics": [{"Name": name, "Unit": unit} for name, unit in METRICS.items()],
}

# The metadata is the same for every record but its time stamp: it is serialised once, here.
# Compact separators: the line is paid for by the byte in CloudWatch Logs.
_METADATA_HEAD = '"_aws":{"Timestamp":'
_METADATA_TAIL = ',"CloudWatchMetrics":' + json.dumps([DIRECTIVE], separators=(",", ":")) + "}"


@functools.lru_cache(maxsize=256)
def _json_string(value: str) -> str:
    # Dimension values come from small closed sets (see above): each is encoded once.
    return json.dumps(value)


def emf_json(access: dict[str, Any], lambda_context: Any) -> str:
    """The members, as JSON text to add to the access line's object, that make the line
    `access` (method, route, status, latency_ms, cold_start, body_bytes) an EMF record: the
    `_aws` metadata, the dimensions and the metric values.

    Written out by hand rather than with json.dumps, which takes about three times as long: the
    dimensions are encoded strings, every value a number (a float's repr is a JSON number)."""
    status = access["status"]
    method = access["method"]
    service = getattr(lambda_context, "function_name", None) or DEFAULT_SERVICE
    return (
        f"{_METADATA_HEAD}{int(time.time() * 1000)}{_METADATA_TAIL}"
        f',"Service":{_json_string(service)}'
        f',"Route":{_json_string(access["route"] or NO_ROUTE)}'
        f',"Method":{_json_string(method if method in METHODS else OTHER_METHOD)}'
        f',"Requests":1'
        f',"Latency":{float(access["latency_ms"])!r}'
        f',"ClientErrors":{int(400 <= status < 500)}'
        f',"ServerErrors":{int(status >= 500)}'
        f',"DatabaseUnavailable":{int(status == 503)}'
        f',"ColdStart":{int(access["cold_start"])}'
        f',"ResponseBodyBytes":{int(access["body_bytes"])}'
    )
