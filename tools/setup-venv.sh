#!/usr/bin/env bash
# Creates tools/.venv with the Python reference stack (HF transformers' fast tokenizer,
# nltk, numpy). Needed only for `make bench` and for regenerating test fixtures.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "$venv/bin/python"
