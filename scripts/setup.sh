#!/usr/bin/env bash
# One-command set-up for a fresh Debian 12 machine (run as root, or with sudo available).
# Idempotent: installs only what is missing and is fast when nothing is.
#   1. system packages: GStreamer 1.x runtime + plugins (base/good/ugly/libav) + tools,
#      GObject-introspection build deps for PyGObject, ffmpeg (writes test videos)
#   2. .venv with the project installed as  -e .[train,gst,dev,events,webtest]  (re-run only when pyproject changes)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
APT_PACKAGES=(
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  libgirepository1.0-dev libcairo2-dev pkg-config ffmpeg
  mosquitto mosquitto-clients chromium openssl
)
EXTRAS=${EXTRAS:-train,gst,dev,events,webtest}

say() { printf '[setup] %s\n' "$*"; }

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing system packages (${missing[*]}) and no apt-get: install them by hand"; exit 1
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  say "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  say "installed: ${missing[*]}"
else
  say "system packages: all present"
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $($PY --version 2>&1)"
  $PY -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi

stamp="$VENV/.setup-stamp"
want="$(cat pyproject.toml | sha256sum | cut -c1-16) $EXTRAS"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say "python packages: up to date ($VENV)"
else
  say "installing the project with [$EXTRAS] into $VENV (first time: ~2.5 GB, a few minutes)"
  log="$VENV/setup-pip.log"
  if ! "$VENV/bin/pip" install --disable-pip-version-check -c requirements/constraints.txt -e ".[$EXTRAS]" >"$log" 2>&1; then
    tail -n 30 "$log"; say "pip install failed (full log: $log)"; exit 1
  fi
  "$VENV/bin/python" -c "import edge, cv2, yaml, numpy" || { say "install failed"; exit 1; }
  echo "$want" > "$stamp"
  say "installed: $("$VENV/bin/pip" list --format=freeze 2>/dev/null | grep -iE '^(tensorflow|tf.keras|tensorflow-model-optimization|ai-edge-litert|onnxruntime|tf2onnx|opencv-python-headless|numpy|PyGObject)==' | tr '\n' ' ')"
fi
