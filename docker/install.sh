#!/bin/sh
# Image build step (docker/Dockerfile): the `ttspilot` user and its /cache folder, /opt/venv, and the given
# arguments handed to `pip install` there, with no pip cache left behind. EXTRA_CA_CERT (PEM text, optional) is
# trusted beside the system's CAs while pip runs: what a TLS-intercepting proxy needs.
set -eu
if ! id ttspilot >/dev/null 2>&1; then
  groupadd --system --gid 10001 ttspilot
  useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/ttspilot --shell /usr/sbin/nologin ttspilot
  mkdir -p /cache && chown ttspilot:ttspilot /cache
fi
if [ ! -x /opt/venv/bin/python ]; then
  python3 -m venv /opt/venv
  # Login shells (KubeRay starts Ray with `bash -l`) reset PATH in /etc/profile; this puts the venv back in front.
  echo 'export PATH="/opt/venv/bin:$PATH"' > /etc/profile.d/ttspilot-venv.sh
fi
if [ -n "${EXTRA_CA_CERT:-}" ]; then
  bundle=$(mktemp)
  cat /etc/ssl/certs/ca-certificates.crt > "$bundle"
  printf '%s\n' "$EXTRA_CA_CERT" >> "$bundle"
  export PIP_CERT="$bundle"
fi
PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 /opt/venv/bin/pip install -q "$@"
rm -f "${bundle:-}"
