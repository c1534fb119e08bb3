# shellcheck shell=bash
# Brokers for the MTP and scale-out tests (shared/BROKERS.md): installs mosquitto,
# rabbitmq-server, redis-server, nginx and prosody from Debian when missing, non-interactively, and makes
# sure none runs as a system service: the tests start their own throwaway instances on free
# loopback ports (test/helpers/brokers.ts, test/helpers/redis.ts).
#
# Source it from .ci/run (as root):   . scripts/ci-brokers.sh
# or run it:                          bash scripts/ci-brokers.sh
# Safe to re-run. Needs DEBIAN_FRONTEND=noninteractive (set here too).

ci_brokers_install() {
  local missing=() policy=/usr/sbin/policy-rc.d own_policy=0
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
  command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  # XMPP server for the XMPP connection request tests (test/helpers/prosody.ts).
  command -v prosody >/dev/null 2>&1 || [ -x /usr/bin/prosody ] || missing+=(prosody)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "ci-brokers: installing ${missing[*]}"
    # Debian postinst scripts start services through invoke-rc.d, which asks policy-rc.d first:
    # exit 101 = "action forbidden", so nothing starts during the install.
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod 755 "$policy"
      own_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" ||
      { [ "$own_policy" = 1 ] && rm -f "$policy"; return 1; }
    [ "$own_policy" = 1 ] && rm -f "$policy"
  fi
  ci_brokers_no_services
}

# Stops and disables the packages' system services, whichever init system is present. Touches
# only the system instances (pid files, node rabbit@<host>, epmd on its default port 4369),
# never the tests' own brokers (they write no pid file there).
ci_brokers_no_services() {
  local svc pidfile pid
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    for svc in mosquitto rabbitmq-server epmd.socket epmd redis-server nginx prosody; do
      systemctl disable --now "$svc" >/dev/null 2>&1 || true
    done
  elif command -v update-rc.d >/dev/null 2>&1; then
    for svc in mosquitto rabbitmq-server redis-server nginx prosody; do
      [ -x "/etc/init.d/$svc" ] && update-rc.d "$svc" disable >/dev/null 2>&1 || true
    done
  fi
  # Started anyway (no policy-rc.d and no init system to ask): stop what runs, by the pid files
  # of the packages' default configurations (SIGTERM: redis-server and the nginx master exit).
  for pidfile in /run/mosquitto/mosquitto.pid /var/run/mosquitto/mosquitto.pid \
    /run/redis/redis-server.pid /var/run/redis/redis-server.pid \
    /run/nginx.pid /var/run/nginx.pid /run/prosody/prosody.pid /var/run/prosody/prosody.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      echo "ci-brokers: stopping the system $(basename "$pidfile" .pid) (pid $pid)"
      kill "$pid" 2>/dev/null || true
    fi
  done
  # rabbitmqctl itself would start epmd, so only ask it when a rabbit node is registered.
  if command -v epmd >/dev/null 2>&1 && epmd -names 2>/dev/null | grep -q '^name rabbit at'; then
    echo "ci-brokers: stopping the system RabbitMQ"
    /etc/init.d/rabbitmq-server stop >/dev/null 2>&1 ||
      HOME=/var/lib/rabbitmq timeout 60 rabbitmqctl stop >/dev/null 2>&1 || true
  fi
  if command -v epmd >/dev/null 2>&1 && epmd -names >/dev/null 2>&1; then
    echo "ci-brokers: stopping the system epmd (port 4369)"
    epmd -kill >/dev/null 2>&1 || true
  fi
  return 0
}

ci_brokers_install
