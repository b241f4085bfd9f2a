#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing, then runs the whole suite.
#
#   ./test.sh            # Graphviz (apt-get), the Python venv, then `cargo test`
#   ./test.sh ARGS...    # ARGS are passed to `cargo test` (e.g. a test name filter)
#
# The venv (PyTorch, ONNX, ONNX Runtime, black, from the package index) lives at
# $RESNETC_VENV (default ~/.cache/resnetc-venv) and is reused when it already has everything;
# the tests find its interpreter through RESNETC_PYTHON and fail, never skip, without it.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v dot >/dev/null 2>&1; then
    echo "test.sh: installing Graphviz (the graph tests render SVG)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq graphviz >/dev/null
fi

venv=${RESNETC_VENV:-$HOME/.cache/resnetc-venv}
requirements=tests/requirements.txt
stamp="$venv/.resnetc-requirements"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
    echo "test.sh: preparing the Python venv at $venv (first time: a few minutes)" >&2
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi
export RESNETC_PYTHON="$venv/bin/python"

cargo test "$@"
