"""The CloudFormation template that `osls package` writes from serverless.yml: cfn-lint passes on
it, and it holds the alarms and limits with the values the README's "Operating it" tables state.
A serverless.yml that osls refuses, or a template cfn-lint faults, fails these tests.

Uses the session's package (support/lambda_package.py); select with `pytest -m package`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.lambda_package import ROOT, STATE_PATH, TEMPLATE_PATH, without_database_url

# With the other tests of the package, on the worker that builds it.
pytestmark = [pytest.mark.package, pytest.mark.xdist_group("lambda-package")]
pytest_plugins = ["support.lambda_package_fixture"]

CFN_LINT = Path(sys.executable).with_name("cfn-lint")
# Rules left out, each for a reason:
# W3005: osls itself writes a DependsOn next to a Ref on the HTTP API's route; harmless.
CFN_LINT_IGNORED = ["W3005"]
# A warm answer is planned at 50 ms: the throttling rate is what the containers serve at that.
PLANNED_ANSWER_SECONDS = 0.05


# --- the template and the README ---------------------------------------------------------------


@pytest.fixture(scope="module")
def template(lambda_package: Path) -> dict:
    return json.loads(TEMPLATE_PATH.read_text())


@pytest.fixture(scope="module")
def stage(lambda_package: Path) -> str:
    return json.loads(STATE_PATH.read_text())["service"]["provider"]["stage"]


def resources_of_type(template: dict, kind: str) -> dict[str, dict]:
    return {name: resource for name, resource in template["Resources"].items() if resource["Type"] == kind}


def the_one(template: dict, kind: str) -> dict:
    (resource,) = resources_of_type(template, kind).values()
    return resource


def readme_table(heading: str) -> list[dict[str, str]]:
    """The first table under the README's `### <heading>`, as rows keyed by column name."""
    section = (ROOT / "README.md").read_text().split(f"\n### {heading}\n", 1)[1]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    header, _separator, *rows = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines[start:end])
    return [dict(zip(header, row, strict=True)) for row in rows]


def first_number(cell: str) -> float:
    match = re.search(r"\d+(\.\d+)?", cell)
    assert match, f"no number in {cell!r}"
    return float(match.group())


def unquoted(cell: str) -> str:
    return cell.strip("`")


# --- cfn-lint ------------------------------------------------------------------------------------


def cfn_lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CFN_LINT), "--ignore-checks", *CFN_LINT_IGNORED, "--", str(path)],
        capture_output=True, text=True, timeout=300,
    )


def test_cfn_lint_passes_on_the_packaged_template(template):
    result = cfn_lint(TEMPLATE_PATH)

    assert result.returncode == 0, f"cfn-lint:\n{result.stdout}{result.stderr}"


def test_cfn_lint_faults_a_template_with_a_broken_alarm(template, tmp_path):
    broken = json.loads(json.dumps(template))
    alarm = next(iter(resources_of_type(broken, "AWS::CloudWatch::Alarm").values()))
    alarm["Properties"]["ComparisonOperator"] = "Above"
    alarm["Properties"]["Dimensions"][0]["Value"] = {"Ref": "NoSuchFunction"}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))

    result = cfn_lint(path)

    assert result.returncode != 0
    assert "Above" in result.stdout and "NoSuchFunction" in result.stdout, result.stdout


def test_a_serverless_yml_that_osls_refuses_fails_packaging(lambda_package, tmp_path):
    """What the session's package build does with a broken serverless.yml: a copy of it with one
    mistake, packaged by the same osls (installed by the session's build), fails before anything
    is built."""
    for name in ("node_modules", "scripts", "package.json"):
        (tmp_path / name).symlink_to(ROOT / name)
    config = (ROOT / "serverless.yml").read_text()
    assert "reservedConcurrency: 80" in config
    (tmp_path / "serverless.yml").write_text(config.replace("reservedConcurrency: 80", "reservedConcurrency: lots"))

    result = subprocess.run(
        [str(ROOT / "node_modules" / ".bin" / "osls"), "package"],
        cwd=tmp_path, env=without_database_url(os.environ),
        capture_output=True, text=True, timeout=300,
    )

    assert result.returncode != 0, result.stdout
    assert "reservedConcurrency" in result.stdout + result.stderr
    assert not (tmp_path / ".serverless" / "todo-api.zip").exists()


# --- limits ----------------------------------------------------------------------------------------


def test_the_limits_are_those_the_readme_states(template):
    limits = {row["limit"]: row["value"] for row in readme_table("Limits")}
    function = the_one(template, "AWS::Lambda::Function")["Properties"]
    throttling = the_one(template, "AWS::ApiGatewayV2::Stage")["Properties"]["DefaultRouteSettings"]
    (log_group,) = [
        resource["Properties"]
        for resource in resources_of_type(template, "AWS::Logs::LogGroup").values()
        if resource["Properties"]["LogGroupName"] == f"/aws/lambda/{function['FunctionName']}"
    ]

    assert {
        "reserved concurrency": function["ReservedConcurrentExecutions"],
        "throttling burst": throttling["ThrottlingBurstLimit"],
        "throttling rate": throttling["ThrottlingRateLimit"],
        "log retention": log_group["RetentionInDays"],
        "memory": function["MemorySize"],
        "timeout": function["Timeout"],
    } == {name: first_number(limits[name]) for name in (
        "reserved concurrency", "throttling burst", "throttling rate", "log retention", "memory", "timeout",
    )}
    assert function["Architectures"] == [limits["architecture"]]


def test_throttling_lets_through_no_more_than_the_reserved_containers_serve(template):
    concurrency = the_one(template, "AWS::Lambda::Function")["Properties"]["ReservedConcurrentExecutions"]
    throttling = the_one(template, "AWS::ApiGatewayV2::Stage")["Properties"]["DefaultRouteSettings"]

    assert throttling["ThrottlingBurstLimit"] == concurrency
    assert throttling["ThrottlingRateLimit"] == concurrency / PLANNED_ANSWER_SECONDS


# --- alarms ----------------------------------------------------------------------------------------


def test_the_alarms_are_those_the_readme_states(template, stage):
    from todo.metrics import DIMENSION_SETS, METRICS, NAMESPACE

    function = the_one(template, "AWS::Lambda::Function")
    function_name = next(name for name, resource in template["Resources"].items() if resource is function)
    alarms = {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
    }
    rows = readme_table("Alarms")
    assert sorted(alarms) == sorted(f"todo-api-{stage}-{unquoted(row['alarm'])}" for row in rows)

    for row in rows:
        alarm = alarms[f"todo-api-{stage}-{unquoted(row['alarm'])}"]
        namespace, metric, statistic = unquoted(row["namespace"]), unquoted(row["metric"]), row["statistic"]
        assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, metric)
        if re.fullmatch(r"p\d+(\.\d+)?", statistic):
            assert alarm["ExtendedStatistic"] == statistic and "Statistic" not in alarm
        else:
            assert alarm["Statistic"] == statistic and "ExtendedStatistic" not in alarm
        assert alarm["Threshold"] == first_number(row["threshold"])
        assert alarm["Period"] == first_number(row["period (s)"])
        periods = first_number(row["periods"])
        assert alarm["EvaluationPeriods"] == alarm.get("DatapointsToAlarm", periods) == periods
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        # The metric exists with exactly these dimensions: the function's metrics by its name,
        # the service's own on the service-wide dimension set.
        if namespace == "AWS/Lambda":
            assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_name}}]
        else:
            assert namespace == NAMESPACE and metric in METRICS
            # An alarm that names a unit sees only the data points sent in that unit.
            assert alarm.get("Unit", METRICS[metric]) == METRICS[metric]
            assert ["Service"] in DIMENSION_SETS
            assert alarm["Dimensions"] == [{"Name": "Service", "Value": {"Ref": function_name}}]


def test_every_alarm_notifies_the_given_topic_or_the_one_the_stack_makes(template, lambda_package):
    actions = {
        "Fn::If": [
            "UseExistingAlarmTopic",
            [{"Ref": "AlarmTopicArn"}],
            {"Fn::If": ["CreateAlarmTopic", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]},
        ]
    }
    for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == alarm["Properties"]["OKActions"] == actions

    topic = template["Resources"]["AlarmTopic"]
    assert topic["Type"] == "AWS::SNS::Topic" and topic["Condition"] == "CreateAlarmTopic"
    assert topic["Properties"]["Subscription"] == [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]
    assert {name: parameter["Default"] for name, parameter in template["Parameters"].items()} == {
        "AlarmTopicArn": "",
        "AlarmEmail": "",
    }
    # `osls deploy` passes the stage's choice (params.alarmTopicArn, params.alarmEmail) to them.
    passed = json.loads(STATE_PATH.read_text())["service"]["provider"]["stackParameters"]
    assert {parameter["ParameterKey"] for parameter in passed} == {"AlarmTopicArn", "AlarmEmail"}
