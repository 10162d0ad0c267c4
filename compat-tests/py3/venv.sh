#!/usr/bin/env bash
# Prints the python of the venv with the newer Python clients (py3/requirements.txt), making it first when it
# is missing or was made from other requirements.
# Owns: that venv (KB_CLIENTS_VENV, default ~/.cache/kbroker-compat/venv-clients). Must not: touch Debian's
# python3 or its packages (py/ runs with those).
# A venv whose stamp matches requirements.txt is used as is: no pip, no network.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${KB_CLIENTS_VENV:-$HOME/.cache/kbroker-compat/venv-clients}"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.kb-requirements" 2>/dev/null)" = "$want" ]; then
    echo "$venv/bin/python"
    exit 0
fi
if ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "python3-venv missing: run scripts/install-deps.sh --test" >&2
    exit 3
fi
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
/usr/bin/python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
echo "$want" >"$venv/.kb-requirements"
echo "$venv/bin/python"
