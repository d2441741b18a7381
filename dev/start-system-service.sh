#!/usr/bin/env bash
# Starts one of the Debian system services the local stack and CI use, the
# way this machine kind starts them (the only place these commands live;
# `npm run dev:up` and .ci/run both call it):
#   dev/start-system-service.sh redis      redis-server on 127.0.0.1:6379 and ::1, no persistence
#   dev/start-system-service.sh postgres   the newest PostgreSQL cluster `main`
# It does not wait for the service to answer; the callers do.
set -euo pipefail
case "${1:-}" in
  redis)
    mkdir -p /var/lib/redis /var/log/redis
    exec redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    ;;
  postgres)
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    [ -n "$version" ] || { echo "no PostgreSQL cluster under /etc/postgresql" >&2; exit 1; }
    out=$(pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>&1) || {
      case "$out" in *"already running"*) exit 0 ;; esac
      echo "pg_ctlcluster $version main start: $out" >&2
      exit 1
    }
    ;;
  *)
    echo "usage: $0 redis|postgres" >&2
    exit 2
    ;;
esac
