#!/usr/bin/env bash
# Start the whole system on one machine: web admin, Celery worker and beat, with demo data.
# Uses DATABASE_URL / REDIS_URL when set; otherwise SQLite and the filesystem broker.
set -euo pipefail
cd "$(dirname "$0")/.."
# Development mode, explicitly: the settings default to production (no DEBUG, no built-in
# SECRET_KEY), and load_demo creates users with published passwords only under DEBUG.
export DEBUG=1
PY=.venv/bin/python
PORT="${PORT:-8000}"
SIMULATOR_PORT="${SIMULATOR_PORT:-8765}"
export CHANNEL_SIMULATOR_URL="http://127.0.0.1:${SIMULATOR_PORT}"
mkdir -p var/log

# The channel simulator plays FLIPKART, AMAZON, PAYTM and MYSHOP (load_demo points them at it).
$PY -m simulator --port "$SIMULATOR_PORT" --seed-demo >var/log/simulator.log 2>&1 &
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT INT TERM

$PY manage.py migrate --noinput
$PY manage.py load_demo
$PY manage.py setup_periodic_tasks

.venv/bin/celery -A uniware worker -Q default,sync,notifications,imports -c 2 \
    --loglevel=INFO >var/log/worker.log 2>&1 &
.venv/bin/celery -A uniware beat --loglevel=INFO --pidfile= >var/log/beat.log 2>&1 &
# The first order pull now, not at beat's first tick ten minutes from now.
.venv/bin/celery -A uniware call channels.tasks.pull_orders >/dev/null

cat <<MSG

  Uniware back-office is starting.
  Admin:  http://127.0.0.1:${PORT}/admin/
  Login:  admin / admin   (role users: packer, sales, warehouse, returns, inbound, catalog;
                           password demo-pass-123)
  Channel simulator: ${CHANNEL_SIMULATOR_URL}/  (orders pulled now, then every 10 minutes;
                     status sync once the tenant is set live in Core › Tenant)
  Logs:   var/log/worker.log, var/log/beat.log, var/log/simulator.log      Stop: Ctrl-C

MSG
$PY manage.py runserver "127.0.0.1:${PORT}"
