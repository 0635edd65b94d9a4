#!/usr/bin/env bash
# Package the Lambda function without AWS credentials or Docker: installs the pinned npm tools if
# needed, then `osls package`, whose plugin builds .serverless/todo-api.zip (scripts/build_lambda.py).
#
#   scripts/package.sh [--stage prod] [...more osls options]
#
# The settings are resolved at package time and written into the CloudFormation template. Without
# AWS credentials DATABASE_URL must be set (else osls reads it from SSM); for a package that is
# only inspected, any value does: DATABASE_URL=postgresql://placeholder/todo scripts/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/osls ]; then
    npm ci --no-audit --no-fund
fi
exec node_modules/.bin/osls package "$@"
