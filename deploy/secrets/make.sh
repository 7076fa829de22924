#!/usr/bin/env bash
# The secret files docker-compose.yml reads (git ignores this folder's secrets): a random
# PostgreSQL password, the job store URL that uses it, and an empty API key file for
# Prometheus, filled once the stack runs:
#   docker compose run --rm gateway gantry keys create prometheus --scopes admin \
#     | tail -n 1 > deploy/secrets/prometheus_api_key
set -euo pipefail
cd "$(dirname "$0")"
umask 077
if [ ! -s postgres_password ]; then
  python3 -c "import secrets; print(secrets.token_urlsafe(24), end='')" > postgres_password
fi
printf 'postgresql://gantry:%s@postgres:5432/gantry' "$(cat postgres_password)" > gantry_jobs_db_url
[ -e prometheus_api_key ] || : > prometheus_api_key
echo "secrets in $(pwd)"
