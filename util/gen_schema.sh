#!/bin/sh
# Regenerate sql/schema.sql and util/fhir_types.txt (byte-identical for the pinned version).
set -eu
cd "$(dirname "$0")"
npm ci --silent --no-audit --no-fund
exec node gen_schema.js
