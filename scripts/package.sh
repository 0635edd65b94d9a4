#!/usr/bin/env bash
# Package the Lambda function without AWS credentials or Docker: installs the pinned npm tools if
# needed, then `osls package`, whose plugin builds .serverless/todo-api.zip (scripts/build_lambda.py).
#
#   scripts/package.sh [--stage prod] [...more osls options]
#
# The settings are written into the CloudFormation template at package time; the connection string
# only as a reference to its secret, which CloudFormation reads when it deploys (see serverless.yml).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/osls ]; then
    npm ci --no-audit --no-fund
fi
exec node_modules/.bin/osls package "$@"
