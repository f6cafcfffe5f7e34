#!/usr/bin/env bash
# Installs what regent needs to build, test, fuzz and benchmark on Debian.
# Idempotent; run as root (or through sudo). On bookworm, libraft >= 0.22 comes from
# bookworm-backports: we enable that suite on the mirror that apt already uses, so no
# host name is ever written into the repository.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")

# The first Debian archive URI that apt already knows for the release's main suite.
debian_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v cn="$codename" '
            /^URIs:/   { uri=$2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == cn) found=1 }
            /^$/       { if (found && uri != "") { print uri; exit } uri=""; found=0 }
            END        { if (found && uri != "") print uri }' "$f" | head -n1
    done | head -n1
    if [ -f /etc/apt/sources.list ]; then
        awk -v cn="$codename" '$1 == "deb" && $3 == cn { print $2; exit }' /etc/apt/sources.list
    fi
}

enable_backports() {
    local list=/etc/apt/sources.list.d/regent-backports.list
    if grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
        return 0
    fi
    local uri
    uri=$(debian_mirror | head -n1)
    if [ -z "$uri" ]; then
        echo "setup: no Debian mirror for '$codename' found in /etc/apt; cannot enable ${codename}-backports" >&2
        exit 1
    fi
    echo "setup: enabling ${codename}-backports on the configured mirror"
    echo "deb $uri ${codename}-backports main" | $SUDO tee "$list" >/dev/null
}

# Version of libraft-dev that apt would install from any enabled suite.
candidate_has_raft() {
    apt-cache policy libraft-dev 2>/dev/null | awk '/Candidate:/ { print $2 }'
}

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq

raft_pkg="libraft-dev"
cand=$(candidate_has_raft)
if [ -z "$cand" ] || [ "$cand" = "(none)" ] || dpkg --compare-versions "$cand" lt 0.17.1; then
    enable_backports
    $SUDO apt-get update -qq
    raft_pkg="libraft-dev/${codename}-backports"
fi

$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential pkg-config make git ca-certificates \
    erlang-nox erlang-dev erlang-common-test erlang-eunit erlang-tools erlang-edoc \
    elixir rebar3 libuv1-dev libssl-dev "$raft_pkg" \
    clang libclang-rt-14-dev valgrind gnuplot-nox procps iproute2 nftables openssl >/dev/null

echo "setup: libraft $(pkg-config --modversion raft), libuv $(pkg-config --modversion libuv), $(erl -noshell -eval 'io:format("OTP ~s", [erlang:system_info(otp_release)]), halt().'), $(elixir --version | tail -n1)"
