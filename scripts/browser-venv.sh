#!/usr/bin/env bash
# Makes (once) the Python venv the browser test uses, from PyPI: selenium, to drive the
# web console in headless Chromium through the Debian chromium-driver (selenium-manager is
# never asked to download a browser or driver). Prints the venv's python.
# The venv is kept in .build/ so later test runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${CONVEYOR_BROWSER_VENV:-.build/browser-venv}
case $venv in /*) ;; *) venv="$(pwd)/$venv" ;; esac
if ! "$venv/bin/python" -c 'import selenium.webdriver' 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check selenium >&2
fi
echo "$venv/bin/python"
