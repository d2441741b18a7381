#!/usr/bin/env bash
# Makes sure the Debian packages the test suite drives are installed:
#   chromium        the dashboard test (headless, through playwright-core)
#   docker-compose  validates compose-stella.yml (no engine needed)
#   faketime        the time-travel run (npm run test:faketime)
#   zstd            the kit's DB members are zstd-compressed (builder and load)
#   docker-registry the reference OCI registry the kit images are pushed to (images stage);
#                   also the Go binary of the image cataloguer's test image
#   slapd           OpenLDAP: the directory people sign in through (test/helpers/slapd.ts starts its own)
#   redis-sentinel  the scale-out test's Sentinel failover (test/scale-out.test.ts)
#   libcommons-io-java libcommons-lang3-java libguava-java python3-yaml python3-jwt python3-attr
#                   real jars (pom.properties) and Python dist-info/egg-info directories the image
#                   cataloguer's test (test/catalog.test.ts) builds its image from
# Each is checked by the file it provides; missing ones are installed with
# apt-get when running as root (as CI does) or with passwordless sudo.
# Otherwise it names the packages and exits 1, so `npm test` fails with the
# reason instead of half-way through the suite.
#
#   dev/ensure-packages.sh            # the test suite's packages
#   dev/ensure-packages.sh zstd ...   # others, by Debian package name
set -euo pipefail

declare -A PROVIDES=(
  [chromium]=/usr/bin/chromium
  [docker-compose]=/usr/bin/docker-compose
  [faketime]=/usr/bin/faketime
  [zstd]=/usr/bin/zstd
  [docker-registry]=/usr/bin/docker-registry
  [slapd]=/usr/sbin/slapd
  [redis-sentinel]=/usr/bin/redis-sentinel
  [libcommons-io-java]=/usr/share/java/commons-io.jar
  [libcommons-lang3-java]=/usr/share/java/commons-lang3.jar
  [libguava-java]=/usr/share/java/guava.jar
  [python3-yaml]=/usr/lib/python3/dist-packages/yaml
  [python3-jwt]=/usr/lib/python3/dist-packages/jwt
  [python3-attr]=/usr/lib/python3/dist-packages/attr
  [softhsm2]=/usr/bin/softhsm2-util
  [opensc]=/usr/bin/pkcs11-tool
)

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(chromium docker-compose faketime zstd docker-registry slapd redis-sentinel libcommons-io-java libcommons-lang3-java libguava-java python3-yaml python3-jwt python3-attr softhsm2 opensc)

missing=()
for pkg in "${wanted[@]}"; do
  file=${PROVIDES[$pkg]:-/usr/bin/$pkg}
  [ -e "$file" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "error: the test suite needs the Debian packages: ${missing[*]}" >&2
  echo "       install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "== installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
# slapd unconfigured: no system directory starts on port 389 (the tests start their own)
echo "slapd slapd/no_configuration boolean true" | "${as_root[@]}" debconf-set-selections
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for pkg in "${missing[@]}"; do
  file=${PROVIDES[$pkg]:-/usr/bin/$pkg}
  if [ ! -e "$file" ]; then
    echo "error: installed $pkg but $file is still missing" >&2
    exit 1
  fi
done
