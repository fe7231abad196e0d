#!/bin/sh
# Installs what the build and the tests need on Debian 12; does nothing when all is present.
# Debian packages through apt; the tokenizer's differential test packages through npm.
set -e
cd "$(dirname "$0")/.."

pkgs="build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
      libcmocka-dev libpcre2-dev libjansson-dev libmicrohttpd-dev libedit-dev
      libcurl4-openssl-dev nodejs npm tmux python3"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# nodejs/npm may come from outside Debian's packages (as on the development machines); a
# working `node` and `npm` on PATH is as good.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    missing=$(echo "$missing" | sed -e 's/ nodejs//' -e 's/ npm//')
fi
if [ -n "$(echo "$missing" | tr -d ' ')" ]; then
    echo "installing:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

if [ -x scripts/install-npm.sh ]; then
    sh scripts/install-npm.sh
fi
