#!/usr/bin/env bash
# Installs the Python peers of the conformance suite's interop scenarios into a virtualenv
# under the cargo target directory, where the suite looks for it:
#   ${CARGO_TARGET_DIR:-<workspace>/target}/switchyard-python
# Idempotent; CI runs it before `cargo test`. Needs python3 >= 3.10 with venv and pip, and
# PyPI. Override the location with SWITCHYARD_PYTHON_ENV.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${SWITCHYARD_PYTHON_ENV:-${CARGO_TARGET_DIR:-$root/target}/switchyard-python}"
python="${PYTHON:-python3}"

"$python" -c 'import sys; assert sys.version_info >= (3, 10), "kosoku needs Python >= 3.10"'
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$venv/bin/python" - <<'PY'
from importlib.metadata import version
print("python peers ready: websockets", version("websockets"), "kosoku", version("kosoku"))
PY
echo "$venv"
