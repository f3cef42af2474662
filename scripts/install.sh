#!/usr/bin/env bash
# Install Atonix Gateway into ./.venv.
#   scripts/install.sh            Python environment only (embedded backend)
#   scripts/install.sh --full     also Ceph, radosgw and the real S3 clients used by tests
# Idempotent: safe to run again; every step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/.."
FULL=0
[[ "${1:-}" == "--full" ]] && FULL=1

log() { printf '\033[1m[install]\033[0m %s\n' "$*" >&2; }

apt_install() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ $(id -u) -ne 0 ]]; then
        log "need root to install: ${missing[*]} (run as root or install them yourself)"; return 1
    fi
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if [[ $FULL -eq 1 ]]; then
    apt_install ceph-mon ceph-osd ceph-common python3-rados radosgw s3cmd rclone wrk curl
    # Node.js and npm run the AWS SDK for JavaScript client tests (tests/clients/js).
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        apt_install nodejs npm
    fi
fi

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    log "Python 3.11+ is required ($PY is too old or missing)"; exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
    log "creating .venv with $("$PY" --version)"
    "$PY" -m venv .venv
fi
# pip's chatter (build-backend warnings) goes to a log; it is shown only on failure.
pip_install() {
    if ! .venv/bin/python -m pip install -q "$@" >.venv/pip.log 2>&1; then
        tail -n 40 .venv/pip.log >&2; exit 1
    fi
}
pip_install --upgrade pip
if [[ $FULL -eq 1 ]]; then
    log "pip install -e .[test,bench]"
    pip_install -e '.[test,bench]'
else
    log "pip install -e .[client]"
    pip_install -e '.[client]'
fi

# python-rados is not on PyPI: link Debian's single extension module into the venv
# (not the whole dist-packages, which would shadow the venv's own packages).
so=$(dpkg -L python3-rados 2>/dev/null | grep -E 'rados\.cpython-.*\.so$' | head -n1 || true)
if [[ -n "$so" ]]; then
    site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    ln -sf "$so" "$site/$(basename "$so")"
    .venv/bin/python -c 'import rados' && log "python-rados linked from $so"
elif [[ $FULL -eq 1 ]]; then
    log "python3-rados is not installed; the rados backend cannot work"; exit 1
fi
if [[ $FULL -eq 1 ]]; then
    # The JS SDK pinned by tests/clients/js/package-lock.json; reinstalled only when it changed.
    js=tests/clients/js
    if [[ ! $js/node_modules/.package-lock.json -nt $js/package-lock.json ]]; then
        log "npm ci --prefix $js"
        npm ci --prefix "$js" --no-audit --no-fund --loglevel=error >&2
    fi
fi
log "done"
