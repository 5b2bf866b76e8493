#!/usr/bin/env bash
# Runs the db-level suite (label db) against a private database on the
# stack fixture's MariaDB: pay_dbtest is dropped, created, migrated with
# pay-api migrate and loaded with tests/fixtures/e2e.json, then the test
# binary given as $1 runs with PAY_DB_* pointing at it.
#   PAY_STACK_ENV=stack/env tests/db/run.sh build/test_db
set -euo pipefail
test_bin=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
: "${PAY_STACK_ENV:?PAY_STACK_ENV must name the env file of a stack}"
# shellcheck source=/dev/null
. "$PAY_STACK_ENV"
dba=${MYSQL_CMD% pay}   # the DBA client without its default database
$dba -e "DROP DATABASE IF EXISTS pay_dbtest;
         CREATE DATABASE pay_dbtest CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
         GRANT ALL PRIVILEGES ON pay_dbtest.* TO '$PAY_DB_USER'@'localhost';"
export PAY_DB_NAME=pay_dbtest PAY_DB_SOCKET PAY_DB_USER PAY_DB_PASSWORD
"$PAY_BIN" --config "$PAY_CONFIG" migrate "$root/db/schema" >/dev/null
"$PAY_BIN" --config "$PAY_CONFIG" load "$root/tests/fixtures/e2e.json" >/dev/null
exec "$test_bin"
