"""Lambda events as AWS sends them to the function, one builder per front a user may put before
it, and the Lambda proxy response read as a client behind that front would read it."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qsl

DOMAIN = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"
FUNCTION_URL_DOMAIN = "xyz123.lambda-url.eu-west-1.on.aws"
ALB_HOST = "todo.internal.example"


class LambdaContext:
    """The attributes of a Lambda context object that anything might read."""

    function_name = "todo-api"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:todo-api"
    memory_limit_in_mb = 1024
    aws_request_id = "0f5e3c7a-1d2b-4c8e-9a6f-2b7d4e1c9a30"
    log_group_name = "/aws/lambda/todo-api"
    log_stream_name = "2026/11/25/[$LATEST]abcdef"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 29_000


def _body(body: str | bytes | None, base64_body: bool) -> str | None:
    if body is None:
        return None
    raw = body.encode() if isinstance(body, str) else body
    return base64.b64encode(raw).decode() if base64_body else raw.decode()


def _multi_query(query: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        values.setdefault(name, []).append(value)
    return values


def http_api_event(method, path, query="", body=None, headers=None, base64_body=False, *, stage="$default", cookies=None, domain=DOMAIN):
    """API Gateway HTTP API, payload format 2.0; a named stage stays in `rawPath`."""
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": {
            "accept": "*/*",
            "host": domain,
            "user-agent": "curl/8.5.0",
            "x-amzn-trace-id": "Root=1-6744a1b0-0123456789abcdef01234567",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
            **(headers or {}),
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": domain.split(".")[0],
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
            "requestId": "Cx1yVhZ3IAMEbXw=",
            "routeKey": "$default",
            "stage": stage,
            "time": "25/Nov/2026:16:00:00 +0000",
            "timeEpoch": 1795622400000,
        },
        "isBase64Encoded": base64_body,
    }
    if query:
        event["queryStringParameters"] = {name: ",".join(values) for name, values in _multi_query(query).items()}
    if cookies:
        event["cookies"] = cookies
    if body is not None:
        event["body"] = _body(body, base64_body)
    return event


def function_url_event(method, path, query="", body=None, headers=None, base64_body=False):
    """A Lambda Function URL: the payload 2.0 shape on the function's own domain."""
    return http_api_event(method, path, query, body, headers, base64_body, domain=FUNCTION_URL_DOMAIN)


def rest_api_event(method, path, query="", body=None, headers=None, base64_body=False, *, stage="prod"):
    """API Gateway REST API, payload format 1.0, a {proxy+} resource: `path` lacks the stage,
    `requestContext.path` has it."""
    all_headers = {
        "Accept": "*/*",
        "Host": DOMAIN,
        "User-Agent": "curl/8.5.0",
        "X-Amzn-Trace-Id": "Root=1-6744a1b0-0123456789abcdef01234567",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        **(headers or {}),
    }
    multi_query = _multi_query(query)
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": DOMAIN,
            "domainPrefix": "a1b2c3d4e5",
            "extendedRequestId": "Cx1yVhZ3IAMEbXw=",
            "httpMethod": method,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTime": "25/Nov/2026:16:00:00 +0000",
            "requestTimeEpoch": 1795622400000,
            "resourceId": "abc123",
            "resourcePath": "/{proxy+}",
            "stage": stage,
        },
        "body": _body(body, base64_body),
        "isBase64Encoded": base64_body,
    }


def alb_event(method, path, query="", body=None, headers=None, base64_body=False):
    """An Application Load Balancer target-group event, multi-value headers turned on."""
    all_headers = {"host": ALB_HOST, "x-forwarded-proto": "https", **(headers or {})}
    return {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/todo/1"}},
        "httpMethod": method,
        "path": path,
        "multiValueQueryStringParameters": _multi_query(query),
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "body": _body(body, base64_body) or "",
        "isBase64Encoded": base64_body,
    }


class Answer:
    """A Lambda proxy response, read as a client behind API Gateway would read it."""

    def __init__(self, response: dict):
        self.status = response["statusCode"]
        self.base64_encoded = bool(response.get("isBase64Encoded"))
        self.headers: dict[str, str] = {}
        for name, value in (response.get("headers") or {}).items():
            self.headers[name.lower()] = value
        for name, values in (response.get("multiValueHeaders") or {}).items():
            self.headers[name.lower()] = ", ".join(values)
        body = response.get("body") or ""
        self.body = base64.b64decode(body) if self.base64_encoded else body.encode()

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self):
        return json.loads(self.body)
