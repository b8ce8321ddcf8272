#!/usr/bin/env bash
# coachflow's single entry point. Run ./build.sh help for the verbs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
ENVIRONMENTS="dev staging prod"

usage() {
  cat <<'EOF'
usage: ./build.sh VERB [ARGS]

  demo                     the whole pipeline on the embedded AWS: apply, send real events, summary
  test [PYTEST ARGS]       all tests (unit + integration)
  bench                    benchmarks, as ratios against baselines measured in the same run
  soak [--events N] [--tenants K] [--seed S] [--faults PLAN|none]
                           the pipeline under load and injected faults, reconciled record by record
  up | down                start/stop the embedded AWS with the local environment applied
  plan ENV                 terraform plan for dev|staging|prod into ENV.tfplan (needs COACHFLOW_IMAGE_URI) and its
                           summary; plan local: the local stack against a fresh embedded AWS
  apply ENV                apply the saved ENV.tfplan (after review)
  package DIR              the image's Python content (requirements.lock with hashes, handlers/) without Docker
  lint                     terraform fmt -check and validate for every environment

  normalize --source VENDOR|auto [--tenant T] FILE...
  rules validate DIR|FILE
  rules test DIR|FILE [--filter SUBSTRING] [--junit FILE]   (rule tests; JUnit XML)
  rules push --tenant T DIR|FILE [--webhook-url URL] [--table NAME] [--endpoint URL]
  tenant --tenant T [--webhook-url URL] [--producer SENDER_ID]...   (who may send the tenant's events)
  redrive raw-events-dlq [--queue-url URL --function NAME]   (failed messages replayed through normalize)
  redrive dead-notifications [--tenant T] [--queue-url URL --table NAME] (back in the ledger, due now)
  send --tenant T [--source VENDOR|auto] FILE...      (to the environment started by 'up')
  fire-schedule NAME [--group GROUP]                   (fire an EventBridge schedule now, on 'up')
  report [--out FILE] [--instance NAME]               (one HTML page of what the environment did)
  trace ID [--instance NAME]                          (an item's journey: message id, event uid, batch id, execution, notification)
  screenshot [REPORT.html]                            (docs/images/report.png, from the demo's latest report)
  browser                                             (install Chromium for the browser tests; test does it)

Environment: COACHFLOW_EMULATOR_PORT (default 4566), COACHFLOW_TF_PLUGIN_MIRROR (a Terraform
provider filesystem mirror, for machines without registry access), COACHFLOW_SAMPLES (the optional
real-sample corpus; default ../shared/samples), COACHFLOW_IMAGE_URI (plan).
EOF
}

die() { echo "build.sh: $*" >&2; exit 2; }

# Python >= 3.11 with a virtualenv holding requirements-dev.txt; reinstalled when requirements change.
ensure_venv() {
  local python="${COACHFLOW_PYTHON:-}"
  if [[ -z "$python" ]]; then
    for candidate in python3.12 python3.11 python3; do
      if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        python="$candidate"; break
      fi
    done
  fi
  [[ -n "$python" ]] || die "Python >= 3.11 is required"
  if [[ ! -x "$PY" ]]; then
    echo "build.sh: creating $VENV" >&2
    "$python" -m venv "$VENV"
  fi
  local stamp="$VENV/.requirements.sha256"
  local want
  want="$(sha256sum < "$ROOT/requirements-dev.lock" | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    # requirements-dev.lock: requirements-dev.txt resolved with every package's hashes (pip-compile,
    # the command is in its header): CI installs exactly what was reviewed, and it holds credentials.
    echo "build.sh: installing requirements-dev.lock into $VENV" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check --require-hashes -r "$ROOT/requirements-dev.lock"
    echo "$want" > "$stamp"
  fi
}

# checkov in a virtualenv of its own: its pins (packaging, networkx...) would fight the project's.
# requirements-checkov.lock: requirements-checkov.txt resolved with every package's hashes
# (pip-compile, the command is in its header), installed as the project's lock is.
ensure_checkov() {
  local tool="$ROOT/.coachflow/tools/checkov"
  local want
  want="$(sha256sum < "$ROOT/requirements-checkov.lock" | cut -d' ' -f1)"
  if [[ ! -x "$tool/bin/checkov" || "$(cat "$tool/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
    echo "build.sh: installing requirements-checkov.lock into $tool" >&2
    rm -rf "$tool"
    "$PY" -m venv "$tool"
    "$tool/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r "$ROOT/requirements-checkov.lock"
    echo "$want" > "$tool/.requirements.sha256"
  fi
}

ensure_terraform() {
  command -v terraform >/dev/null || die "Terraform >= 1.11 is required (https://developer.hashicorp.com/terraform/install)"
  TF_CLI_CONFIG_FILE="$("$PY" -c 'from emulator.stack import terraform_cli_config; print(terraform_cli_config())')"
  export TF_CLI_CONFIG_FILE
  "$PY" - <<'EOF' || die "Terraform >= 1.11 is required"
import json, subprocess, sys
version = json.loads(subprocess.check_output(["terraform", "version", "-json"]))["terraform_version"]
sys.exit(tuple(int(x) for x in version.split(".")[:2]) < (1, 11))
EOF
}

# Chromium for the browser tests (Debian's package, through apt), driven by the pinned pip package
# playwright; nothing is downloaded from elsewhere. Skipped when present; COACHFLOW_CHROMIUM names
# another Chromium or Chrome binary (macOS).
ensure_browser() {
  if [[ -n "${COACHFLOW_CHROMIUM:-}" ]]; then
    [[ -x "$COACHFLOW_CHROMIUM" ]] || die "COACHFLOW_CHROMIUM=$COACHFLOW_CHROMIUM is not an executable"
    return
  fi
  command -v chromium >/dev/null && return
  if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
    echo "build.sh: installing Debian's chromium for the browser tests" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >&2 \
      || die "could not install chromium with apt-get"
  else
    die "the browser tests need Chromium: 'apt-get install chromium' as root, or set COACHFLOW_CHROMIUM to a Chromium or Chrome binary"
  fi
}

real_env() {
  local env="${1:-}"
  [[ " $ENVIRONMENTS " == *" $env "* ]] || die "ENV must be one of: $ENVIRONMENTS"
  local dir="$ROOT/terraform/environments/$env"
  local backend="${COACHFLOW_TF_BACKEND_CONFIG:-$dir/backend.hcl}"
  [[ -f "$backend" ]] || die "no backend config: copy $dir/backend.hcl.example to $dir/backend.hcl (state bucket, region) or set COACHFLOW_TF_BACKEND_CONFIG"
  terraform -chdir="$dir" init -input=false -backend-config="$backend" >&2
  echo "$dir"
}

cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
verb="${1:-help}"
shift || true

case "$verb" in
  help|-h|--help)
    usage ;;
  demo)
    ensure_venv; ensure_terraform
    exec "$PY" -m emulator.demo ;;
  test)
    ensure_venv; ensure_terraform; ensure_browser; ensure_checkov
    # In parallel (pytest-xdist): the tests over one shared embedded AWS run on one worker, the
    # tests that apply an environment of their own start first, in the order tests/conftest.py
    # gives them (--no-loadscope-reorder: not largest group first). The slowest
    # tests are listed at the end. COACHFLOW_TEST_WORKERS=0 runs everything in one process.
    # Bytecode is cached under .coachflow/ (ignored), even where PYTHONDONTWRITEBYTECODE is set:
    # otherwise each of the five test processes rewrites the assertions of every test module again
    # (~2 s of CPU each).
    unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX="$ROOT/.coachflow/pycache"
    exec "$PY" -m pytest -n "${COACHFLOW_TEST_WORKERS:-4}" --dist loadgroup --no-loadscope-reorder --durations=25 "$@" ;;
  bench)
    ensure_venv
    exec "$PY" -m tests.bench "$@" ;;
  soak)
    ensure_venv; ensure_terraform
    exec "$PY" -m emulator.soak "$@" ;;
  up)
    ensure_venv; ensure_terraform
    exec "$PY" -m emulator.local up ;;
  down)
    ensure_venv
    exec "$PY" -m emulator.local down ;;
  lint)
    ensure_venv; ensure_terraform
    exec "$PY" -m emulator.local lint ;;
  plan)
    ensure_venv; ensure_terraform
    [[ "${1:-}" == local ]] && exec "$PY" -m emulator.plan_local
    [[ -n "${COACHFLOW_IMAGE_URI:-}" ]] || die "set COACHFLOW_IMAGE_URI to the handlers image by digest (<registry>/<repo>@sha256:...)"
    dir="$(real_env "${1:-}")"
    terraform -chdir="$dir" plan -input=false -var "image_uri=$COACHFLOW_IMAGE_URI" -out="$1.tfplan"
    terraform -chdir="$dir" show -json "$1.tfplan" > "$dir/$1.plan.json"
    "$PY" -m cli.plan_summary "$dir/$1.plan.json" "Terraform plan: $1"
    echo "saved plan: $dir/$1.tfplan (review it, then ./build.sh apply $1)" ;;
  apply)
    ensure_venv; ensure_terraform
    dir="$(real_env "${1:-}")"
    [[ -f "$dir/$1.tfplan" ]] || die "no saved plan: run ./build.sh plan $1 first"
    terraform -chdir="$dir" apply -input=false "$1.tfplan"
    rm -f "$dir/$1.tfplan" ;;
  package)
    # The image's Python content without Docker: the locked runtime dependencies and the handlers.
    ensure_venv
    [[ -n "${1:-}" ]] || die "usage: ./build.sh package DIR"
    [[ ! -e "$1" || -z "$(ls -A "$1")" ]] || die "$1 is not empty"
    # Bytecode beside the sources, as in the image: under a PYTHONPYCACHEPREFIX (./build.sh test sets
    # one), pip would compile into the prefix instead, under the temporary directory it installs
    # through, a new one every run.
    env -u PYTHONPYCACHEPREFIX "$PY" -m pip install --quiet --disable-pip-version-check --no-cache-dir --require-hashes \
      --no-deps -r "$ROOT/requirements.lock" --target "$1"
    cp -R "$ROOT/handlers" "$1/handlers"
    find "$1/handlers" -name __pycache__ -prune -exec rm -rf {} +
    echo "packaged: $1 (requirements.lock + handlers/, as the image's \$LAMBDA_TASK_ROOT)" ;;
  normalize|rules|send|tenant|redrive)
    ensure_venv
    exec "$PY" -m cli "$verb" "$@" ;;
  fire-schedule)
    ensure_venv
    exec "$PY" -m emulator.local fire-schedule "$@" ;;
  report)
    ensure_venv
    exec "$PY" -m emulator.report "$@" ;;
  trace)
    ensure_venv
    exec "$PY" -m emulator.trace "$@" ;;
  screenshot)
    ensure_venv; ensure_browser
    exec "$PY" -m emulator.browser screenshot "$@" ;;
  browser)
    ensure_venv; ensure_browser
    exec "$PY" -m emulator.browser check ;;
  *)
    usage >&2
    echo "build.sh: unknown verb '$verb'" >&2
    exit 2 ;;
esac
