#!/usr/bin/env bash
# One-command set-up, idempotent: installs only what is missing and is fast when nothing is.
#
# On a host (a fresh Debian 12 machine; root, or sudo available):
#   1. system packages: GStreamer 1.x runtime + plugins (base/good/ugly/libav) + tools,
#      GObject-introspection build deps for PyGObject, ffmpeg (writes test videos)
#   2. .venv with the project installed as  -e .[train,gst,dev,events,webtest]  with requirements/constraints.txt (x86 pins)
# On a Jetson or a Coral board (detected from <EDGE_ROOT>/proc/device-tree, or SETUP_TARGET=device,
# which `make setup-device` sets):
#   1. system packages the runtime needs (python3-venv, python3-gi, GStreamer tools/plugins, v4l-utils);
#      JetPack/Mendel already ship TensorRT, pycoral, tflite_runtime and GStreamer: nothing is rebuilt
#   2. .venv made with --system-site-packages (it sees JetPack's tensorrt/pycuda, Coral's pycoral and
#      tflite_runtime, python3-gi) with the base package only:  -e .  (no TensorFlow, no x86 constraints);
#      NO_VENV=1 installs into the user site instead (pip install --user), no venv at all
# Settings (environment): SETUP_TARGET=auto|host|device, EDGE_ROOT=/ (a simulated board root for tests),
#   DRY_RUN=1 (print the plan, change nothing), NO_VENV=1, PYTHON=python3, VENV=.venv, EXTRAS (host only)
#   scripts/setup.sh --target   prints "host" or "device" (the Makefile asks it) and exits
#   scripts/setup.sh --board    prints the detected board's device config (jetson-nano ...), or nothing
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
EDGE_ROOT=${EDGE_ROOT:-/}
SETUP_TARGET=${SETUP_TARGET:-auto}
DRY_RUN=${DRY_RUN:-0}
NO_VENV=${NO_VENV:-0}
APT_PACKAGES=(
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  gstreamer1.0-plugins-bad gir1.2-gst-rtsp-server-1.0
  libgirepository1.0-dev libcairo2-dev pkg-config ffmpeg
  gcc  # tests/test_edgetpu_backend.py compiles a stub Edge TPU delegate library
  mosquitto mosquitto-clients chromium openssl  # events: MQTT broker tests, web view in a real browser, TLS CA
)
# on a board: what the runtime needs from the OS (no build dependencies: PyGObject comes as python3-gi)
DEVICE_APT_PACKAGES=(
  python3-venv python3-pip python3-gi gir1.2-gstreamer-1.0 gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good v4l-utils
)
EXTRAS=${EXTRAS:-train,gst,dev,events,webtest}

say() { printf '[setup] %s\n' "$*"; }

# -- where are we: host, or a Jetson / Coral board -------------------------------------------------------
# edge/detect.py decides (loaded as a lone file: stdlib only). A bare Python 3.6 (JetPack 4.6 before
# anything is installed) lacks the dataclasses module it needs: then the same markers are read here.
board_config() {
  local py="$PY"; [ -x "$VENV/bin/python" ] && py="$VENV/bin/python"   # after setup: has the dataclasses backport
  "$py" - "$EDGE_ROOT" 2>/dev/null <<'PYEOF' && return 0
import importlib.util, sys
spec = importlib.util.spec_from_file_location("edge_detect_standalone", "edge/detect.py")
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
d = m.detect(sys.argv[1], check_tensorrt=False)
print(m.choose_config(d) if (d.jetson or d.coral_board) else "")
PYEOF
  local dt="$EDGE_ROOT/proc/device-tree" model compat
  model=$(tr -d '\0' < "$dt/model" 2>/dev/null | tr '[:upper:]' '[:lower:]' || true)
  compat=$(tr '\0' ' ' < "$dt/compatible" 2>/dev/null || true)
  case "$compat $model" in
    *nvidia,tegra*|*jetson*|*"nvidia orin"*) echo "jetson (edge/detect.py not runnable with $PY)";;
    *phanbell*|*mt8167*) echo "coral board (edge/detect.py not runnable with $PY)";;
    *) echo "";;
  esac
}

target() {
  case "$SETUP_TARGET" in
    host|device) echo "$SETUP_TARGET";;
    auto) [ -n "$(board_config)" ] && echo device || echo host;;
    *) say "SETUP_TARGET must be auto, host or device, got '$SETUP_TARGET'" >&2; exit 2;;
  esac
}

if [ "${1:-}" = "--target" ]; then target; exit 0; fi
if [ "${1:-}" = "--board" ]; then board_config; exit 0; fi
TARGET=$(target)

pip_for_python() {  # the newest pip that runs on this Python (an old pip may not read Requires-Python)
  case "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" in
    3.6) echo "pip<22";; 3.7) echo "pip<24.1";; 3.8) echo "pip<25.1";; *) echo "pip";;
  esac
}

# -- the plan: one place decides what is installed where -------------------------------------------------
if [ "$TARGET" = device ]; then
  PACKAGES=("${DEVICE_APT_PACKAGES[@]}")
  VENV_ARGS=(--system-site-packages)
  SPEC="."                  # the base package only: no TensorFlow, no PyGObject build, no x86 pins
  CONSTRAINTS=()
  why=$(board_config); why=${why:-SETUP_TARGET=device}
  say "target: device ($why): base package only, system TensorRT / pycoral / tflite_runtime / gi visible"
else
  PACKAGES=("${APT_PACKAGES[@]}")
  VENV_ARGS=()
  SPEC=".[$EXTRAS]"
  CONSTRAINTS=(-c requirements/constraints.txt)
  say "target: host: [$EXTRAS] with requirements/constraints.txt"
fi
if [ "$NO_VENV" = 1 ]; then
  PIP=("$PY" -m pip); PIP_WHERE=(--user); PYBIN="$PY"; stamp="$HOME/.cache/edge-action-setup-stamp"
else
  PIP=("$VENV/bin/python" -m pip); PIP_WHERE=(); PYBIN="$VENV/bin/python"; stamp="$VENV/.setup-stamp"
fi
PIP_CMD=("${PIP[@]}" install --disable-pip-version-check "${PIP_WHERE[@]}" "${CONSTRAINTS[@]}" -e "$SPEC")

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi

if [ "$DRY_RUN" = 1 ]; then
  say "plan: apt packages: ${PACKAGES[*]} (missing here: ${missing[*]:-none})"
  if [ "$NO_VENV" = 1 ]; then say "plan: no venv (NO_VENV=1): user site of $PY"
  else say "plan: venv: $PY -m venv ${VENV_ARGS[*]:+${VENV_ARGS[*]} }$VENV"; fi
  say "plan: pip: ${PIP_CMD[*]}"
  say "dry run: nothing changed"
  exit 0
fi

# -- 1. system packages ----------------------------------------------------------------------------------
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

# -- 2. the venv (or none) -------------------------------------------------------------------------------
if [ "$NO_VENV" != 1 ]; then
  if [ -x "$VENV/bin/python" ] && [ "$TARGET" = device ] && \
     ! grep -qi "include-system-site-packages *= *true" "$VENV/pyvenv.cfg" 2>/dev/null; then
    say "$VENV was made without --system-site-packages: it cannot see the board's TensorRT/pycoral/gi;"
    say "remove it (rm -rf $VENV) and run make setup again"; exit 1
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $($PY --version 2>&1) ${VENV_ARGS[*]}"
    $PY -m venv "${VENV_ARGS[@]}" "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade "$(pip_for_python "$VENV/bin/python")"
  fi
fi

# -- 3. the project ----------------------------------------------------------------------------------------
want="$(cat pyproject.toml setup.py | sha256sum | cut -c1-16) $TARGET $SPEC"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say "python packages: up to date (${VENV_ARGS[*]:+$VENV with system site-packages}${VENV_ARGS[*]:-$VENV})"
else
  say "installing: ${PIP_CMD[*]}"
  [ "$TARGET" = host ] && say "(first time: ~2.5 GB, a few minutes)"
  mkdir -p "$(dirname "$stamp")"
  log="$(dirname "$stamp")/setup-pip.log"
  if ! "${PIP_CMD[@]}" >"$log" 2>&1; then
    tail -n 30 "$log"; say "pip install failed (full log: $log)"; exit 1
  fi
  "$PYBIN" -c "import edge, cv2, yaml, numpy" || { say "install failed"; exit 1; }
  echo "$want" > "$stamp"
  say "installed: $("${PIP[@]}" list --format=freeze 2>/dev/null | grep -iE '^(tensorflow|tf.keras|tensorflow-model-optimization|ai-edge-litert|tflite-runtime|onnxruntime|tf2onnx|opencv-python-headless|numpy|PyGObject|tensorrt|pycoral)==' | tr '\n' ' ')"
fi
