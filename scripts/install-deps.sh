#!/usr/bin/env bash
# Installs, from Debian packages only, whatever wec needs to build and test that is not there yet.
# Idempotent and quiet when everything is present. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  # toolchain
  g++ make cmake pkg-config ccache clang libclang-rt-14-dev clang-format
  # libraries
  libcli11-dev libpugixml-dev nlohmann-json3-dev libboost-dev libssl-dev libkrb5-dev
  libpcap-dev zlib1g-dev libsqlite3-dev libpq-dev librdkafka-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # test peers (real components the tests start on 127.0.0.1)
  krb5-kdc krb5-admin-server krb5-user python3 python3-gssapi python3-impacket tcpdump tshark openssl curl
  # promtool, which validates the /metrics text of `wec serve` (the tests never use the Prometheus
  # server this package also installs; on a systemd host it is enabled: `systemctl disable --now
  # prometheus` if unwanted)
  prometheus
  postgresql postgresql-15
  # syslog receiver of the output tests (imudp/imtcp/imptcp/imuxsock, and TLS through OpenSSL)
  rsyslog rsyslog-openssl
  # redis receiver of the output tests (redis-server is started by the tests; the system service
  # is not used), and redis-cli
  redis-server redis-tools
  # load balancer in front of `wec serve` (PROXY protocol tests; started by the tests only)
  haproxy
  # shells whose completion scripts the tests load (completions/)
  zsh fish
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
