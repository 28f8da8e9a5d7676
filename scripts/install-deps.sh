#!/usr/bin/env bash
# Installs the Debian packages vigil's build, tests, fuzzing, lint, benchmarks
# and fault suite need. Safe to run again. Needs root (CI is root).
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  clang clang-tidy clang-format cppcheck libclang-rt-14-dev   # fuzz + lint
  libuv1-dev                                                  # libvigil-uv (the libuv adapter), baseline benchmark
  iproute2 nftables iptables conntrack libnetfilter-queue-dev # fault suite
  socat netcat-openbsd python3 netbase                        # fault suite peers, /etc/protocols
  gcc-mingw-w64-x86-64 wine wine64                            # Windows build + tests (wine: /usr/bin/wine, wineboot)
  redis-server libhiredis-dev                                 # presence in Redis (tests start their own redis-server)
  libmicrohttpd-dev prometheus                                # metrics endpoint; promtool checks the exposition and rules
  libssl-dev openssl                                          # HMAC tokens and TLS (OpenSSL 3); s_client in tests
  chromium                                                    # status page checked in headless Chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
