#!/usr/bin/env bash
# What `make test` needs beyond the Python packages (scripts/bootstrap.sh): the Debian packages the dashboard's
# browser tests drive -- Debian's headless Chromium, its chromedriver, and a CJK font so the screenshots show
# Chinese -- and the Java runtime Spark needs for the linkage model on Splink's Spark backend
# (tests/test_spark_linkage.py). Installs the missing ones with apt-get (apt-get update once first); quiet when
# nothing is missing.
#
# It never stops `make test`: when it cannot install (not root and no password-less sudo, no apt-get, the
# Debian mirror unreachable), it says what it could not install and why, and exits 0. The browser tests and the
# Spark test then skip and say why, or fail under CI=true, where they must run.
#
# QST_TEST_ENV_PRETEND_MISSING="pkg ..." treats those packages as missing (to try the install path on a
# machine that has them); QST_TEST_ENV_APT_GET overrides the apt-get program (to try the failure paths).
set -uo pipefail

PACKAGES=(chromium chromium-driver fonts-wqy-microhei openjdk-17-jre-headless)
APT_GET="${QST_TEST_ENV_APT_GET:-apt-get}"
PRETEND=" ${QST_TEST_ENV_PRETEND_MISSING:-} "

say() { echo "setup_test_env: $*" >&2; }

installed() {  # a Debian package is installed (dpkg's status), or, without dpkg, its program is on PATH
  local pkg=$1
  [[ "$PRETEND" == *" $pkg "* ]] && return 1
  if command -v dpkg-query >/dev/null 2>&1; then
    [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ]
    return
  fi
  case $pkg in
    chromium) command -v chromium >/dev/null 2>&1 ;;
    chromium-driver) command -v chromedriver >/dev/null 2>&1 ;;
    openjdk-17-jre-headless) command -v java >/dev/null 2>&1 ;;
    *) fc-list 2>/dev/null | grep -qi "wenquanyi\|wqy" ;;
  esac
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

give_up() {  # why; the packages stay missing and the suite goes on
  say "could not install ${missing[*]}: $1"
  if [[ " ${missing[*]} " == *" chromium"* ]]; then
    say "the dashboard's browser tests (tests/test_dashboard.py) will skip (under CI=true they fail instead);"
  elif [[ " ${missing[*]} " == *" fonts-wqy-microhei "* ]]; then
    say "the dashboard's screenshots (test-artifacts/dashboard/) will show boxes for Chinese text;"
  fi
  if [[ " ${missing[*]} " == *" openjdk-17-jre-headless "* ]]; then
    say "the Spark linkage test (tests/test_spark_linkage.py) will skip (under CI=true it fails instead);"
  fi
  say "to have them, as root: apt-get update && apt-get install -y ${missing[*]}"
  exit 0
}

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    sudo=(sudo -n)
  else
    give_up "not running as root, and sudo needs a password or is not installed"
  fi
fi
command -v "$APT_GET" >/dev/null 2>&1 || give_up "$APT_GET is not available (not a Debian or Ubuntu machine?)"

log=$(mktemp -t qst-setup-test-env.XXXXXX)
trap 'rm -f "$log"' EXIT
# fail fast when the mirror does not answer; wait for another apt (e.g. an unattended upgrade) to finish
apt_opts=(-o Acquire::Retries=1 -o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30
          -o DPkg::Lock::Timeout=300)

uses=()
[[ " ${missing[*]} " == *" chromium"* || " ${missing[*]} " == *" fonts-"* ]] && uses+=("the dashboard's browser tests")
[[ " ${missing[*]} " == *" openjdk-"* ]] && uses+=("the Spark linkage test")
say "installing ${missing[*]} for $(printf '%s and ' "${uses[@]}" | sed 's/ and $//') (apt-get) ..."
if ! "${sudo[@]}" "$APT_GET" "${apt_opts[@]}" update -qq >"$log" 2>&1; then
  say "apt-get update failed; trying the install with the package lists already on this machine:"
  tail -n 5 "$log" | sed 's/^/  /' >&2
elif grep -q "^[WE]: Failed to fetch\|^W: Some index files failed" "$log"; then
  say "apt-get update could not reach every mirror; trying the install anyway:"
  grep "^[WE]:" "$log" | head -n 3 | sed 's/^/  /' >&2
fi
if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "$APT_GET" "${apt_opts[@]}" install -y -qq "${missing[@]}" \
     >"$log" 2>&1; then
  reason=$(grep "^E:" "$log" | head -n 3 | paste -sd ';' -)
  give_up "apt-get install failed (${reason:-$(tail -n 1 "$log")}; is the Debian mirror reachable?)"
fi
still=()
for pkg in "${missing[@]}"; do
  [[ "$PRETEND" == *" $pkg "* ]] && continue
  installed "$pkg" || still+=("$pkg")
done
if [ ${#still[@]} -gt 0 ]; then
  missing=("${still[@]}")
  give_up "apt-get reported success but they are still not installed"
fi
say "installed ${missing[*]}"
