# Shared by scripts/run and scripts/test: make a fresh machine ready, idempotently and quickly.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/busreview}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Python packages: in a .venv next to the code, unless the image already has them (Docker).
ensure_python_env() {
  local req="${1:-requirements.txt}"
  if [ "${BUSREVIEW_SYSTEM_PYTHON:-0}" = "1" ]; then
    PY=python3
    return
  fi
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
  fi
  PY="$ROOT/.venv/bin/python"
  local stamp=".venv/.installed-$(cat requirements.txt "$req" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    log "installing Python packages from $req"
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -r "$req"
    touch "$stamp"
  fi
}

# Debian packages the browser tests and the burned-in text check need; installed when missing and
# we are root. tesseract reads with Debian's bundled English data (tesseract-ocr-eng): nothing is
# downloaded at run time.
app_debian_packages() {
  # What the app itself runs: tesseract (and its English data) for the burned-in text search.
  command -v tesseract >/dev/null 2>&1 || echo tesseract-ocr
  tesseract --list-langs 2>/dev/null | grep -qx eng || echo tesseract-ocr-eng
}

apt_install() {
  log "installing Debian packages: $*"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# scripts/run: the app's own packages; without root it says what is missing and goes on (DICOM
# import then reports "text detection unavailable" and proposes no boxes).
ensure_app_packages() {
  local missing
  mapfile -t missing < <(app_debian_packages)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != "0" ]; then
    log "missing Debian packages: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})"
    return 0
  fi
  apt_install "${missing[@]}"
}

# scripts/test: the app's packages and the browsers.
ensure_debian_packages() {
  local missing
  mapfile -t missing < <(app_debian_packages)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v firefox-esr >/dev/null 2>&1 || missing+=(firefox-esr)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != "0" ]; then
      log "missing Debian packages: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})"
      return 1
    fi
    apt_install "${missing[@]}"
  fi
}

# PostgreSQL and Redis: start the local ones if this machine has them and they are down.
ensure_services() {
  if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  if command -v redis-server >/dev/null 2>&1 && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    log "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  "$PY" scripts/ensure_database.py
}

# The Firefox check drives Debian's Firefox with puppeteer-core (no browser download).
ensure_node_packages() {
  if [ -d tests/firefox/node_modules ]; then
    return
  fi
  if command -v npm >/dev/null 2>&1; then
    log "installing tests/firefox node packages"
    (cd tests/firefox && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --silent) || log "npm ci failed: the Firefox test will be skipped"
  else
    log "no npm: the Firefox test will be skipped"
  fi
}
