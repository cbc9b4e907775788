"""What machine a benchmark ran on: CPU, cores, OS, Python, runtime versions, CPU governor,
Jetson power/temperature (``tegrastats``) and Coral Edge TPUs.

A latency number without this context cannot be compared with anything, so every report carries
it. Everything here reads files or package metadata and never fails: a missing piece is ``None``.
No TensorFlow (runs on the devices).
"""
import glob
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from typing import Dict, List, Optional

CPU_ROOT = "/sys/devices/system/cpu"

# distribution name -> label in the report. Metadata only: nothing is imported.
RUNTIME_DISTS = {
    "ai-edge-litert": "ai-edge-litert",
    "tflite-runtime": "tflite_runtime",
    "onnxruntime": "onnxruntime",
    "onnxruntime-gpu": "onnxruntime-gpu",
    "tensorrt": "tensorrt",
    "pycoral": "pycoral",
    "numpy": "numpy",
    "opencv-python-headless": "opencv",
    "opencv-python": "opencv-python",
}
# Debian packages that carry runtimes installed outside pip (Coral apt repo, JetPack).
DEB_PACKAGES = ("libedgetpu1-std", "libedgetpu1-max", "python3-pycoral", "python3-tflite-runtime",
                "python3-libnvinfer", "nvidia-l4t-core")


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\x00", "").strip()
    except OSError:
        return None


def cpu_model(cpuinfo: str = "/proc/cpuinfo", dt_model: str = "/proc/device-tree/model") -> str:
    """x86: 'model name'; ARM boards: the device-tree model / 'Hardware' / 'Model' lines."""
    text = _read(cpuinfo) or ""
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        m = re.search(rf"^{re.escape(key)}\s*:\s*(.+)$", text, re.M)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return _read(dt_model) or platform.processor() or platform.machine() or "unknown"


def os_name() -> str:
    text = _read("/etc/os-release") or ""
    m = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', text, re.M)
    return m.group(1) if m else platform.platform()


def dist_version(name: str) -> Optional[str]:
    try:
        from importlib import metadata
        return metadata.version(name)
    except Exception:
        return None


def deb_version(package: str) -> Optional[str]:
    if not shutil.which("dpkg-query"):
        return None
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or "install ok installed" not in out.stdout:
        return None
    return out.stdout.split("\t", 1)[1].strip() or None


def libedgetpu_path() -> Optional[str]:
    """Where ``libedgetpu.so.1`` is, if the Edge TPU runtime is installed."""
    for pat in ("/usr/lib/*/libedgetpu.so.1", "/usr/lib/libedgetpu.so.1", "/usr/local/lib/libedgetpu.so.1"):
        hits = glob.glob(pat)
        if hits:
            return hits[0]
    return None


def runtime_versions() -> Dict[str, Optional[str]]:
    """Versions of every inference runtime that matters here (None = not installed)."""
    out = {label: dist_version(dist) for dist, label in RUNTIME_DISTS.items()}
    for p in DEB_PACKAGES:
        v = deb_version(p)
        if v:
            out[p] = v
    lib = libedgetpu_path()
    out["libedgetpu"] = (out.get("libedgetpu1-std") or out.get("libedgetpu1-max") or ("present: " + lib)) if lib else None
    return {k: v for k, v in out.items() if v is not None or k in ("ai-edge-litert", "tflite_runtime",
                                                                      "onnxruntime", "tensorrt", "libedgetpu")}


# -- CPU frequency governor -------------------------------------------------------------------
def read_governors(root: str = CPU_ROOT) -> Dict[str, str]:
    """cpuN -> scaling_governor, for every CPU whose governor file is readable."""
    out = {}
    for path in sorted(glob.glob(os.path.join(root, "cpu[0-9]*", "cpufreq", "scaling_governor")),
                       key=lambda p: int(re.search(r"cpu(\d+)", p.rsplit("cpufreq", 1)[0]).group(1))):
        v = _read(path)
        if v:
            out[os.path.basename(os.path.dirname(os.path.dirname(path)))] = v
    return out


def governor_warning(governors: Dict[str, str]) -> Optional[str]:
    """A warning when any readable governor is not 'performance' (pycoral's benchmarks warn the
    same way: frequency scaling makes latency depend on load history). None when all are
    'performance' or nothing is readable (VMs, containers)."""
    bad = {cpu: g for cpu, g in governors.items() if g != "performance"}
    if not bad:
        return None
    kinds = sorted(set(bad.values()))
    return (f"CPU frequency scaling is on ({', '.join(kinds)} on {len(bad)}/{len(governors)} CPUs): latency "
            f"varies with load. For stable numbers: `sudo cpupower frequency-set -g performance` "
            f"(Jetson: `sudo jetson_clocks`)")


# -- machine summary --------------------------------------------------------------------------
def device_model() -> Optional[str]:
    return _read("/proc/device-tree/model")


def machine_info() -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    govs = read_governors()
    return {
        "hostname": platform.node(),
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "os": os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "device_model": device_model(),
        "governors": govs,
        "governor_warning": governor_warning(govs),
        "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "runtimes": runtime_versions(),
    }


# -- Coral -------------------------------------------------------------------------------------
EDGETPU_USB_IDS = (("1a6e", "089a"), ("18d1", "9302"))   # before / after firmware load


def edgetpu_devices(dev_root: str = "/dev", usb_root: str = "/sys/bus/usb/devices") -> List[dict]:
    """Edge TPUs visible to this machine: pycoral's list when pycoral is importable, else PCIe
    ``/dev/apex_N`` nodes and USB devices with the Coral vendor/product ids."""
    try:  # Google's pycoral (Coral apt repo), never the unrelated PyPI package of that name
        from pycoral.utils.edgetpu import list_edge_tpus  # type: ignore
        return [{"type": d.get("type"), "path": d.get("path"), "via": "pycoral"} for d in list_edge_tpus()]
    except Exception:
        pass
    found = [{"type": "pci", "path": p, "via": "devnode"} for p in sorted(glob.glob(os.path.join(dev_root, "apex_*")))]
    for d in sorted(glob.glob(os.path.join(usb_root, "*"))):
        vid, pid = _read(os.path.join(d, "idVendor")), _read(os.path.join(d, "idProduct"))
        if vid and pid and (vid.lower(), pid.lower()) in EDGETPU_USB_IDS:
            found.append({"type": "usb", "path": os.path.basename(d), "via": f"usb {vid}:{pid}"})
    return found


def detect_device() -> str:
    """--device auto: the runner's ``edge.detect`` when present (device tree, Edge TPU, TensorRT),
    else: jetson when the device tree says so, coral when an Edge TPU is visible, else cpu."""
    try:
        from edge import detect as _d  # the runner's module: same answer as `edge-run --device auto`
        return _d.device_of(_d.choose_config(_d.detect()))
    except Exception:
        pass
    model = (device_model() or "").lower()
    if "jetson" in model:
        return "jetson"
    if edgetpu_devices():
        return "coral"
    return "cpu"


# -- Jetson: tegrastats ------------------------------------------------------------------------
_TS_RE = re.compile(r"^\d\d-\d\d-\d{4} \d\d:\d\d:\d\d\s+")
_RAM_RE = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP_RE = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_CPU_RE = re.compile(r"\bCPU \[([^\]]*)\]", re.I)
_GPU_RE = re.compile(r"\bGR3D(?:_FREQ)? (\d+)%")
_TEMP_RE = re.compile(r"\b([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C\b")
_RAIL_RE = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
_INPUT_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0")   # board input power where a rail measures it


def parse_tegrastats(line: str) -> dict:
    """One ``tegrastats`` line -> {ram_mb, ram_total_mb, swap_mb, cpu_load (list, None for 'off'),
    cpu_mhz, gpu_load, temps_c {sensor: C}, rails_mw {rail: (now, avg)}, power_mw (board input)}.

    Handles the formats of JetPack 4 (Nano: ``POM_5V_IN 2545/2547``, ``CPU@25C``) and JetPack 5/6
    (Orin: leading timestamp, ``VDD_IN 4673mW/4673mW``, ``cpu@54.937C``) and old L4T
    (``cpu [17%,13%]@408``, ``GR3D 3%@76``). Unknown tokens are ignored."""
    line = line.strip()
    out: dict = {"raw": line}
    line = _TS_RE.sub("", line)
    m = _RAM_RE.search(line)
    if m:
        out["ram_mb"], out["ram_total_mb"] = int(m.group(1)), int(m.group(2))
    m = _SWAP_RE.search(line)
    if m:
        out["swap_mb"], out["swap_total_mb"] = int(m.group(1)), int(m.group(2))
    m = _CPU_RE.search(line)
    if m:
        loads, mhz = [], []
        for item in m.group(1).split(","):
            item = item.strip()
            if item.lower() == "off" or not item:
                loads.append(None)
                mhz.append(None)
                continue
            pct, _, f = item.partition("@")
            loads.append(float(pct.rstrip("%")) if pct.rstrip("%").replace(".", "", 1).isdigit() else None)
            mhz.append(int(f) if f.isdigit() else None)
        out["cpu_load"], out["cpu_mhz"] = loads, mhz
    m = _GPU_RE.search(line)
    if m:
        out["gpu_load"] = float(m.group(1))
    out["temps_c"] = {name: float(v) for name, v in _TEMP_RE.findall(line)}
    rails = {}
    for name, now, avg in _RAIL_RE.findall(line):
        if name in ("RAM", "SWAP", "IRAM"):
            continue
        rails[name] = (int(now), int(avg))
    out["rails_mw"] = rails
    power = next((rails[r][0] for r in _INPUT_RAILS if r in rails), None)
    if power is None and rails:
        power = sum(v[0] for v in rails.values())   # Orin AGX-like: no single input rail
    out["power_mw"] = power
    return out


def summarize_tegrastats(samples: List[dict]) -> Optional[dict]:
    """Mean/max board power and max temperature per sensor over a run."""
    if not samples:
        return None
    powers = [s["power_mw"] for s in samples if s.get("power_mw") is not None]
    temps: Dict[str, float] = {}
    for s in samples:
        for k, v in s.get("temps_c", {}).items():
            temps[k] = max(temps.get(k, v), v)
    gpu = [s["gpu_load"] for s in samples if s.get("gpu_load") is not None]
    return {
        "samples": len(samples),
        "power_mw_mean": sum(powers) / len(powers) if powers else None,
        "power_mw_max": max(powers) if powers else None,
        "temps_c_max": temps,
        "gpu_load_mean": sum(gpu) / len(gpu) if gpu else None,
        "ram_mb_max": max((s.get("ram_mb", 0) for s in samples), default=None),
        "rails": sorted({k for s in samples for k in s.get("rails_mw", {})}),
    }


class TegrastatsMonitor:
    """Runs ``tegrastats --interval MS`` in the background while a benchmark runs (Jetson only).

    ``available`` is False (and the monitor does nothing) where tegrastats is not on PATH.
    Some rails need root; tegrastats then prints fewer fields and we report what it gives.
    """

    def __init__(self, interval_ms: int = 500, exe: Optional[str] = None):
        self.exe = exe or shutil.which("tegrastats")
        self.interval_ms = interval_ms
        self.samples: List[dict] = []
        self._proc = None
        self._thread = None

    @property
    def available(self) -> bool:
        return self.exe is not None

    def __enter__(self):
        if self.available:
            try:
                self._proc = subprocess.Popen([self.exe, "--interval", str(self.interval_ms)],
                                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)
                self._thread = threading.Thread(target=self._pump, daemon=True)
                self._thread.start()
            except OSError:
                self._proc = None
        return self

    def _pump(self):
        for line in self._proc.stdout:
            if "RAM" in line:
                try:
                    self.samples.append(parse_tegrastats(line))
                except Exception:  # a line we cannot read must not kill the benchmark
                    pass

    def __exit__(self, *exc):
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            if self._thread is not None:
                self._thread.join(timeout=2)

    def summary(self) -> Optional[dict]:
        return summarize_tegrastats(self.samples)
