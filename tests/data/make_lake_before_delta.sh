#!/usr/bin/env bash
# Makes lake_before_delta.tar.gz and lake_before_delta.expected.json: a lake written by the
# release before Delta tables (commit a2363a0, the lake's own Parquet + JSON-manifest format), and
# what that release's reader, `show` and `status` said of it. Run from the repository root:
#   tests/data/make_lake_before_delta.sh [/path/to/venv]   (default .venv; it needs no network)
# It is kept to say how the fixture was made; the tests only unpack the committed files.
set -euo pipefail
REPO=$(pwd)
VENV=${1:-$REPO/.venv}
WORK=$(mktemp -d)
OLD=$WORK/old-release
git worktree add --detach "$OLD" a2363a0 >/dev/null
trap 'git -C "$REPO" worktree remove --force "$OLD"; rm -rf "$WORK"' EXIT

export PYTHONPATH=$OLD/plugins PIPELINES_HOME=$OLD PIPELINES_LAKE=$WORK/lake
export PIPELINES_NAMESPACE=local AIRFLOW_HOME=$WORK/airflow PIPELINES_TASK_RETRIES=0
export AIRFLOW__CORE__DAGS_FOLDER=$OLD/dags AIRFLOW__CORE__PLUGINS_FOLDER=$OLD/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING
unset _AIRFLOW_PARSING_CONTEXT_DAG_ID
PIP=$VENV/bin/pipelines

# three days of the sample cookbook, then day 2 again through refund_model: several versions
$PIP backfill e2e_test --start 2024-01-01 --end 2024-01-02
cp -a "$WORK/lake" "$WORK/after-day-2"
$PIP run e2e_test --date 2024-01-03
$PIP run refund_model --date 2024-01-02
# superseded files: what the later commits replaced (and deleted) is put back, as a commit that
# crashed before deleting them would have left them; and a crashed writer's temp file
(cd "$WORK/after-day-2" && find . -name '*.parquet') | while read -r f; do
  [ -e "$WORK/lake/$f" ] || cp -p "$WORK/after-day-2/$f" "$WORK/lake/$f"
done
first=$(find "$WORK/lake/local/cleaned/orders" -name 'part-*.parquet' | sort | head -1)
cp -p "$first" "$(dirname "$first")/.tmp-5f0c2a9e1b7d4e3f8a6b0c1d2e3f4a5b"

# what the old release says of it
$VENV/bin/python - "$REPO/tests/data/lake_before_delta.expected.json" "$PIP" <<'PY'
import json, subprocess, sys
import pipelines
from pipelines.project.config import load_project

project = load_project()
days = ["2024-01-01", "2024-01-02", "2024-01-03"]
wanted = []
for d in project.datasets:
    wanted += [(d.name, layer, None) for layer in ("raw", "cleaned", "quarantine")]
    wanted += [(d.name, "raw", day) for day in days]
    if d.ingestion.value == "full":
        wanted += [(d.name, "cleaned", day) for day in days]
wanted += [(a.name, "aggregated", None) for a in project.aggregates]
for w in project.workflows:
    wanted += [(w.name, "workflows", day) for day in [None, *days]]
reads = []
for name, layer, as_of in wanted:
    frame = pipelines.read(name, layer, as_of=as_of)
    rows = frame.to_json(orient="records", date_format="iso", date_unit="us")
    dtypes = {str(c): str(t) for c, t in frame.dtypes.items()}
    reads.append({"name": name, "layer": layer, "as_of": as_of, "dtypes": dtypes,
                  "rows": json.loads(rows)})
cli = [sys.argv[2]]
show = subprocess.run([*cli, "show"], capture_output=True, text=True, check=True).stdout
status = subprocess.run([*cli, "status", "--json", "--now", "2024-01-04T03:00"],
                        capture_output=True, text=True, check=True).stdout
body = {"made_by": "tests/data/make_lake_before_delta.sh at commit a2363a0", "reads": reads,
        "show": show, "status": json.loads(status)}
with open(sys.argv[1], "w") as fh:
    json.dump(body, fh, indent=1, sort_keys=True)
    fh.write("\n")
PY
tar -C "$WORK/lake" --sort=name --owner=0 --group=0 --numeric-owner -czf \
  "$REPO/tests/data/lake_before_delta.tar.gz" .
echo "wrote tests/data/lake_before_delta.tar.gz ($(stat -c %s "$REPO/tests/data/lake_before_delta.tar.gz") bytes)"
