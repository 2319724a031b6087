#!/usr/bin/env bash
# Regenerates dashboard.schema.json from npm @grafana/schema (not needed at test time).
# Usage: dashboards/schema/regenerate.sh   (needs npm and network access to the npm registry)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
GRAFANA_SCHEMA_VERSION=11.6.16
GENERATOR_VERSION=2.9.0
TYPESCRIPT_VERSION=7.0.2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund "@grafana/schema@${GRAFANA_SCHEMA_VERSION}" \
  "ts-json-schema-generator@${GENERATOR_VERSION}" "typescript@${TYPESCRIPT_VERSION}"
npx ts-json-schema-generator --no-type-check --type Dashboard \
  --path node_modules/@grafana/schema/dist/esm/raw/dashboard/x/dashboard_types.gen.d.ts \
  -o generated.json
# The TypeScript types close every object, but an annotation query carries its datasource's own
# query fields (Prometheus: expr, step, titleFormat...), which the types cannot name: open that
# one definition. Everything else stays closed (additionalProperties: false).
python3 - generated.json "$here/dashboard.schema.json" "$GRAFANA_SCHEMA_VERSION" "$GENERATOR_VERSION" <<'PY'
import json, sys
source, target, schema_version, generator_version = sys.argv[1:]
schema = json.load(open(source))
schema["definitions"]["AnnotationQuery"]["additionalProperties"] = True
schema["$comment"] = (
    f"Generated from npm @grafana/schema@{schema_version} "
    "(dist/esm/raw/dashboard/x/dashboard_types.gen.d.ts, type Dashboard) with "
    f"ts-json-schema-generator@{generator_version}; AnnotationQuery opened for datasource query "
    "fields. Regenerate with dashboards/schema/regenerate.sh."
)
with open(target, "w") as out:
    json.dump(schema, out, indent=2, sort_keys=True)
    out.write("\n")
PY
echo "wrote $here/dashboard.schema.json"
