"""``--device auto``: which board is this, which Edge TPUs and cameras it has, which device config suits it.

Evidence, each read below a root path (``/`` on a real machine, a temporary tree in tests):

- ``proc/device-tree/model`` and ``proc/device-tree/compatible`` (NUL-separated). Real strings:
  Coral Dev Board (Mendel's device tree) ``Freescale i.MX8MQ Phanbell`` (mainline kernels:
  ``Google i.MX8MQ Phanbell``); Coral Dev Board Mini: MediaTek MT8167 (``mediatek,mt8167`` in
  compatible; Coral's own camera examples match ``mt8167`` in the model); Jetson Nano
  ``NVIDIA Jetson Nano Developer Kit`` (tegra210); Xavier NX ``NVIDIA Jetson Xavier NX Developer Kit``,
  AGX Xavier ``Jetson-AGX`` (L4T 32.2+; tegra194); Orin Nano ``NVIDIA Orin Nano Developer Kit``,
  Orin NX ``NVIDIA Orin NX Developer Kit``, AGX Orin ``Jetson AGX Orin`` (tegra234). The compatible
  list (``nvidia,tegra210/186/194/234``) decides the Jetson family; the model text is the fallback.
- ``dev/apex_N``: an Edge TPU on PCIe (gasket/apex driver): Dev Board, M.2 / Mini PCIe Accelerator.
- ``sys/bus/usb/devices/*/idVendor,idProduct``: a USB Accelerator, ``1a6e:089a`` (Global Unichip,
  before libedgetpu loads its firmware) or ``18d1:9302`` (Google, firmware running).
- ``dev/video*``: cameras; their formats and sizes come from ``v4l2-ctl --list-formats-ext``
  (VIDIOC_ENUM_FMT / ENUM_FRAMESIZES) or, without v4l-utils, GStreamer's ``Gst.DeviceMonitor``.
- whether ``tensorrt`` imports.

Edge TPU device strings are pycoral's (``make_interpreter(device=...)``): ``""`` any, ``":N"`` N-th of
any kind, ``"usb"``/``"usb:N"``, ``"pci"``/``"pci:N"``. A board whose TPU is on PCIe gets ``pci:0``.
"""
import glob
import importlib.util
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

EDGETPU_USB_BOOT = ("1a6e", "089a")     # Global Unichip Corp.: firmware not loaded yet
EDGETPU_USB_RUNNING = ("18d1", "9302")  # Google Inc.: firmware loaded by libedgetpu
EDGETPU_USB_IDS = (EDGETPU_USB_BOOT, EDGETPU_USB_RUNNING)
EDGETPU_KINDS = ("usb", "pci")

# Jetson SoC (device-tree compatible) -> (family, device config)
JETSON_SOCS = (
    ("nvidia,tegra234", "Orin", "jetson-orin-nano"),
    ("nvidia,tegra194", "Xavier", "jetson-xavier-nx"),
    ("nvidia,tegra186", "TX2", "jetson-nano"),      # JetPack 4.6 stack, like the Nano
    ("nvidia,tegra210", "Nano/TX1", "jetson-nano"),
)
# Fallback on the model text when there is no compatible list: (substring, family, config)
JETSON_MODELS = (
    ("orin", "Orin", "jetson-orin-nano"),
    ("xavier", "Xavier", "jetson-xavier-nx"),
    ("jetson-agx", "Xavier", "jetson-xavier-nx"),   # AGX Xavier, L4T 32.2+
    ("tx2", "TX2", "jetson-nano"),
    ("nano", "Nano/TX1", "jetson-nano"),
    ("tx1", "Nano/TX1", "jetson-nano"),
)
CORAL_BOARDS = (  # (model substrings, compatible entries, board name, device config)
    (("phanbell",), ("fsl,imx8mq-phanbell", "google,imx8mq-phanbell"), "Coral Dev Board", "coral-devboard"),
    (("mt8167",), ("mediatek,mt8167",), "Coral Dev Board Mini", "coral-devboard-mini"),
)


@dataclass
class EdgeTpu:
    kind: str            # "pci" | "usb"
    index: int           # N-th of its kind (pycoral's "pci:N" / "usb:N")
    path: str            # /dev/apex_N, or the sysfs USB device directory
    state: str = ""      # USB: "running" (18d1:9302) or "boot" (1a6e:089a, firmware loads on first open)

    @property
    def device(self) -> str:
        return "{}:{}".format(self.kind, self.index)


@dataclass
class Detection:
    model: str = ""                    # /proc/device-tree/model text
    compatible: List[str] = field(default_factory=list)
    jetson: bool = False
    jetson_family: str = ""            # Orin, Xavier, TX2, Nano/TX1
    coral_board: str = ""              # "Coral Dev Board", "Coral Dev Board Mini" or ""
    raspberry_pi: bool = False
    edgetpus: List[EdgeTpu] = field(default_factory=list)
    tensorrt: bool = False
    arch: str = ""
    evidence: List[str] = field(default_factory=list)

    @property
    def edgetpu_pcie(self) -> bool:
        return any(t.kind == "pci" for t in self.edgetpus)

    @property
    def edgetpu_usb(self) -> bool:
        return any(t.kind == "usb" for t in self.edgetpus)

    @property
    def edgetpu(self) -> bool:
        return bool(self.edgetpus)

    def to_dict(self) -> dict:
        config = choose_config(self)
        return {"model": self.model, "compatible": self.compatible, "arch": self.arch, "jetson": self.jetson,
                "jetson_family": self.jetson_family, "coral_board": self.coral_board,
                "raspberry_pi": self.raspberry_pi, "edgetpus": [t.device for t in self.edgetpus],
                "edgetpu_device": edgetpu_device(self), "tensorrt": self.tensorrt, "config": config,
                "device": device_of(config), "evidence": self.evidence}


# -- reading the tree -------------------------------------------------------------------------------
def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def read_model(root: str = "/") -> str:
    raw = _read_bytes(os.path.join(root, "proc/device-tree/model"))
    return raw.replace(b"\x00", b"").decode("utf-8", "replace").strip()


def read_compatible(root: str = "/") -> List[str]:
    raw = _read_bytes(os.path.join(root, "proc/device-tree/compatible"))
    return [c.decode("utf-8", "replace").strip() for c in raw.split(b"\x00") if c.strip()]


def _read_text(path: str) -> str:
    return _read_bytes(path).decode("utf-8", "replace").strip().lower()


def pcie_edgetpus(root: str = "/") -> List[EdgeTpu]:
    """``/dev/apex_N`` nodes (gasket/apex driver), in N order."""
    def number(p: str) -> int:
        tail = p.rsplit("_", 1)[-1]
        return int(tail) if tail.isdigit() else 1 << 30

    nodes = sorted(glob.glob(os.path.join(root, "dev/apex_*")), key=number)
    return [EdgeTpu("pci", i, "/dev/" + os.path.basename(p)) for i, p in enumerate(nodes)]


def usb_edgetpus(root: str = "/") -> List[EdgeTpu]:
    """USB Accelerators by USB id, in sysfs name order (the order libusb enumerates is not promised)."""
    found = []
    for d in sorted(glob.glob(os.path.join(root, "sys/bus/usb/devices/*"))):
        ids = (_read_text(os.path.join(d, "idVendor")), _read_text(os.path.join(d, "idProduct")))
        if ids in EDGETPU_USB_IDS:
            state = "running" if ids == EDGETPU_USB_RUNNING else "boot"
            found.append(EdgeTpu("usb", len(found), "/sys/bus/usb/devices/" + os.path.basename(d), state))
    return found


def tensorrt_importable() -> bool:
    try:
        return importlib.util.find_spec("tensorrt") is not None
    except (ImportError, ValueError):
        return False


# -- deciding -----------------------------------------------------------------------------------------
def jetson_of(model: str, compatible: List[str]) -> Tuple[str, str]:
    """(family, config) of a Jetson, or ("", "") when this is no Jetson."""
    for soc, family, config in JETSON_SOCS:
        if soc in compatible:
            return family, config
    low = model.lower()
    if "jetson" in low or (low.startswith("nvidia ") and "orin" in low):
        for key, family, config in JETSON_MODELS:
            if key in low:
                return family, config
        return "unknown", "jetson-orin-nano"
    if any(c.startswith("nvidia,tegra") for c in compatible):
        return "unknown", "jetson-orin-nano"
    return "", ""


def coral_board_of(model: str, compatible: List[str]) -> Tuple[str, str]:
    """(board name, config) of a Coral board, or ("", "")."""
    low = model.lower()
    for models, compats, name, config in CORAL_BOARDS:
        if any(m in low for m in models) or any(c in compatible for c in compats):
            return name, config
    return "", ""


def _tpu_evidence(tpus: List[EdgeTpu]) -> List[str]:
    out = []
    for t in tpus:
        if t.kind == "pci":
            out.append("{} present: Edge TPU on PCIe ({})".format(t.path, t.device))
        elif t.state == "running":
            out.append("USB Edge TPU 18d1:9302 (firmware running) at {} ({})".format(t.path, t.device))
        else:
            out.append("USB Edge TPU 1a6e:089a (firmware loads on first use) at {} ({})".format(t.path, t.device))
    return out


def detect(root: str = "/", check_tensorrt: bool = True, arch: Optional[str] = None) -> Detection:
    d = Detection(arch=arch or platform.machine())
    d.model, d.compatible = read_model(root), read_compatible(root)
    if d.model:
        d.evidence.append("device-tree model: {}".format(d.model))
    d.jetson_family = jetson_of(d.model, d.compatible)[0]
    d.jetson = bool(d.jetson_family)
    if d.jetson:
        d.evidence.append("Jetson ({})".format(d.jetson_family))
    d.coral_board = coral_board_of(d.model, d.compatible)[0]
    if d.coral_board:
        d.evidence.append(d.coral_board)
    d.raspberry_pi = "raspberry pi" in d.model.lower()
    d.edgetpus = pcie_edgetpus(root) + usb_edgetpus(root)
    d.evidence += _tpu_evidence(d.edgetpus)
    d.tensorrt = tensorrt_importable() if check_tensorrt else False
    if d.tensorrt:
        d.evidence.append("python module tensorrt importable")
    if not d.evidence:
        d.evidence.append("no Jetson, Coral or Edge TPU found: CPU")
    return d


def edgetpu_device(d: Detection) -> str:
    """pycoral device string for the Edge TPU to use: the first PCIe one, else the first USB one, else ""."""
    for kind in ("pci", "usb"):
        for t in d.edgetpus:
            if t.kind == kind:
                return t.device
    return ""


def parse_edgetpu_device(device: str) -> Tuple[str, Optional[int]]:
    """pycoral's device strings -> (kind, index): "" -> ("", None), ":1" -> ("", 1), "usb" -> ("usb", None),
    "pci:0" -> ("pci", 0). Anything else is a ValueError that lists the accepted forms."""
    m = re.match(r"^(usb|pci)?(?::(\d+))?$", device or "")
    if m is None:
        raise ValueError("Edge TPU device must be '' (any), ':N', 'usb', 'usb:N', 'pci' or 'pci:N' "
                         "(pycoral's make_interpreter device strings), got {!r}".format(device))
    return m.group(1) or "", (int(m.group(2)) if m.group(2) is not None else None)


def choose_config(d: Detection) -> str:
    """Device config name for a detection."""
    if d.jetson:
        return jetson_of(d.model, d.compatible)[1]
    if d.coral_board:
        return coral_board_of(d.model, d.compatible)[1]
    if d.edgetpu_pcie:
        return "coral-pcie"
    if d.edgetpu_usb:
        return "coral-usb"
    if d.tensorrt:  # a dGPU host or an unlabelled Jetson
        return "jetson-orin-nano"
    if d.raspberry_pi or d.arch in ("aarch64", "arm64", "armv7l"):
        return "rpi4-cpu"
    return "x86-cpu"


def device_of(config_name: str) -> str:
    if config_name.startswith("jetson"):
        return "jetson"
    if config_name.startswith("coral"):
        return "coral"
    return "cpu"


def config_for_device(device: str, d: Optional[Detection] = None) -> str:
    """Config name for an explicit ``--device`` (cpu/coral/jetson), refined by what is detected."""
    if device == "auto":
        return choose_config(d or detect())
    if device not in ("cpu", "coral", "jetson"):
        raise ValueError("unknown device {!r} (cpu, coral, jetson, auto)".format(device))
    d = d or detect(check_tensorrt=False)
    if device == "cpu":
        arm = d.raspberry_pi or d.arch in ("aarch64", "arm64", "armv7l")
        return "rpi4-cpu" if arm and not d.jetson else "x86-cpu"
    if device == "coral":
        if d.coral_board:
            return coral_board_of(d.model, d.compatible)[1]
        return "coral-pcie" if d.edgetpu_pcie else "coral-usb"
    return choose_config(d) if d.jetson else "jetson-orin-nano"


# -- cameras ------------------------------------------------------------------------------------------
@dataclass
class CameraFormat:
    fourcc: str                        # YUYV, MJPG, H264 ... (GStreamer: the caps name or format)
    description: str = ""
    sizes: List[str] = field(default_factory=list)   # "640x480@30,15" or "32x32-1920x1080 step 2/2"


@dataclass
class Camera:
    path: str
    formats: List[CameraFormat] = field(default_factory=list)
    note: str = ""                     # why formats are missing, if they are


_FMT_NEW = re.compile(r"^\s*\[\d+\]:\s*'([^']*)'\s*\(([^)]*)\)")
_FMT_OLD = re.compile(r"^\s*Pixel Format\s*:\s*'([^']*)'(?:\s*\(([^)]*)\))?")
_NAME_OLD = re.compile(r"^\s*Name\s*:\s*(.+)$")
_SIZE = re.compile(r"^\s*Size:\s*(Discrete|Stepwise|Continuous)\s+(.+)$")
_FPS = re.compile(r"\(([\d.]+)\s*fps\)")


def _fps_text(fps: str) -> str:
    value = float(fps)
    return str(int(value)) if value == int(value) else "{:g}".format(value)


def parse_v4l2_formats(text: str) -> List[CameraFormat]:
    """``v4l2-ctl --list-formats-ext`` output (both the v1.14 'Index/Pixel Format' layout and the newer
    ``[0]: 'YUYV' (YUYV 4:2:2)`` one) -> formats with their frame sizes and frame rates."""
    formats = []  # type: List[CameraFormat]
    for line in text.splitlines():
        m = _FMT_NEW.match(line) or _FMT_OLD.match(line)
        if m:
            formats.append(CameraFormat(m.group(1).strip(), (m.group(2) or "").strip()))
            continue
        if not formats:
            continue
        fmt = formats[-1]
        n, s, f = _NAME_OLD.match(line), _SIZE.match(line), _FPS.search(line)
        if n and not fmt.description:
            fmt.description = n.group(1).strip()
        elif s:
            size = s.group(2).strip().replace(" - ", "-").replace("with step", "step")
            fmt.sizes.append(size if s.group(1) == "Discrete" else "{} ({})".format(size, s.group(1).lower()))
        elif f and "Interval" in line and fmt.sizes:
            sep = "@" if "@" not in fmt.sizes[-1] else ","
            fmt.sizes[-1] += sep + _fps_text(f.group(1))
    return formats


_CAPS_FIELD = r"{}=\(\w+\)(\[[^\]]*\]|\{{[^}}]*\}}|[^,;]+)"


def parse_gst_caps(caps: str) -> List[CameraFormat]:
    """A ``Gst.DeviceMonitor`` device's caps string (structures separated by ``;``) -> formats."""
    by_name = {}  # type: Dict[str, CameraFormat]
    for struct in caps.split(";"):
        struct = struct.strip()
        if not struct:
            continue
        name = struct.split(",", 1)[0].strip()
        fmt = re.search(_CAPS_FIELD.format("format"), struct)
        key = fmt.group(1).strip() if (fmt and name == "video/x-raw") else name
        w, h = re.search(_CAPS_FIELD.format("width"), struct), re.search(_CAPS_FIELD.format("height"), struct)
        rate = re.search(_CAPS_FIELD.format("framerate"), struct)
        entry = by_name.setdefault(key, CameraFormat(key, name))
        if w and h:
            size = "{}x{}".format(w.group(1).strip(), h.group(1).strip())
            if rate:
                size += "@" + rate.group(1).strip()
            if size not in entry.sizes:
                entry.sizes.append(size)
    return list(by_name.values())


def video_nodes(root: str = "/") -> List[str]:
    def number(p: str) -> int:
        digits = re.sub(r"\D", "", os.path.basename(p))
        return int(digits) if digits else 1 << 30

    return ["/dev/" + os.path.basename(p) for p in sorted(glob.glob(os.path.join(root, "dev/video*")), key=number)]


def _v4l2_formats(node: str, timeout: float = 5.0) -> Tuple[List[CameraFormat], str]:
    try:
        out = subprocess.run(["v4l2-ctl", "-d", node, "--list-formats-ext"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return [], "v4l2-ctl failed: {}".format(e)
    if out.returncode != 0:
        return [], "v4l2-ctl: {}".format((out.stderr or out.stdout).strip().splitlines()[-1:] or "failed")
    formats = parse_v4l2_formats(out.stdout)
    return formats, "" if formats else "no capture formats (a metadata or output node)"


def _gst_cameras() -> Optional[List[Camera]]:
    """Cameras seen by GStreamer's device monitor (Video/Source), or None without PyGObject/GStreamer."""
    try:
        import gi
        gi.require_version("Gst", "1.0")
        from gi.repository import Gst
    except (ImportError, ValueError):
        return None
    Gst.init(None)
    monitor = Gst.DeviceMonitor.new()
    monitor.add_filter("Video/Source", None)
    if not monitor.start():
        return None
    try:
        cams = []
        for dev in monitor.get_devices():
            props = dev.get_properties()
            path = (props.get_string("device.path") if props else None) or dev.get_display_name()
            caps = dev.get_caps()
            cams.append(Camera(path, parse_gst_caps(caps.to_string() if caps else "")))
        return cams
    finally:
        monitor.stop()


def list_cameras(root: str = "/", use_v4l2ctl: Optional[bool] = None) -> List[Camera]:
    """Every ``/dev/video*`` with its formats (v4l2-ctl), else GStreamer's device monitor."""
    nodes = video_nodes(root)
    if not nodes:
        return []
    if use_v4l2ctl is None:
        use_v4l2ctl = shutil.which("v4l2-ctl") is not None
    if use_v4l2ctl:
        cams = []
        for node in nodes:
            formats, note = _v4l2_formats(os.path.join(root, node.lstrip("/")) if root != "/" else node)
            cams.append(Camera(node, formats, note))
        return cams
    gst = _gst_cameras()
    if gst:
        return gst
    note = "formats unknown: install v4l-utils (v4l2-ctl) or GStreamer's Python bindings (python3-gi)"
    return [Camera(node, [], note) for node in nodes]


def describe_cameras(cams: List[Camera]) -> List[str]:
    """Lines for ``edge-run --list-devices``."""
    if not cams:
        return ["  no camera found (no /dev/video* device)"]
    lines = []
    for cam in cams:
        lines.append("  {}{}".format(cam.path, ": " + cam.note if cam.note else ""))
        for fmt in cam.formats:
            desc = " ({})".format(fmt.description) if fmt.description and fmt.description != fmt.fourcc else ""
            lines.append("    {}{}: {}".format(fmt.fourcc, desc, ", ".join(fmt.sizes) or "sizes not reported"))
    return lines


def describe(root: str = "/") -> str:
    """The text of ``edge-run --list-devices``: device configs, what was detected here, cameras."""
    from .config import ConfigError, available_configs, load_config

    d = detect(root)
    lines = ["device configs:"]
    for name, path in available_configs().items():
        try:
            c = load_config(str(path))
            lines.append("  {:<20} device={:<7} backend={:<12} precision={:<8} {}".format(
                name, c.device, c.backend, c.precision, c.description))
        except ConfigError as e:
            lines.append("  {:<20} INVALID: {}".format(name, e))
    info = d.to_dict()
    tpus = ", ".join("{} ({})".format(t.device, t.path) for t in d.edgetpus) or "none"
    lines += ["detected here:",
              "  model: {}  arch: {}".format(d.model or "(no /proc/device-tree/model)", d.arch),
              "  Edge TPUs: {}  tensorrt: {}".format(tpus, d.tensorrt),
              "  --device auto -> {} ({}){}".format(info["config"], info["device"], _tpu_note(d)),
              "  evidence: " + "; ".join(d.evidence),
              "cameras:"]
    return "\n".join(lines + describe_cameras(list_cameras(root)))


def _tpu_note(d: Detection) -> str:
    dev = edgetpu_device(d)
    return ", Edge TPU device {!r}".format(dev) if dev else ""
