"""``--device auto``: which board is this, and which device config suits it.

Evidence, in order: ``/proc/device-tree/model`` ("NVIDIA Jetson ...", "Coral Dev Board ...",
"Raspberry Pi 4 ..."), an Edge TPU present (``/dev/apex_0`` for PCIe/M.2/Dev Board, or a USB device
with ids 1a6e:089a (before firmware load) / 18d1:9302 (running) under /sys/bus/usb/devices), and
whether ``tensorrt`` imports. Every path is a parameter so tests run on a fake tree.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import platform
from dataclasses import dataclass, field
from typing import List, Optional

EDGETPU_USB_IDS = (("1a6e", "089a"), ("18d1", "9302"))


@dataclass
class Detection:
    model: str = ""                    # /proc/device-tree/model text
    jetson: bool = False
    coral_board: bool = False
    raspberry_pi: bool = False
    edgetpu_pcie: bool = False
    edgetpu_usb: bool = False
    tensorrt: bool = False
    arch: str = ""
    evidence: List[str] = field(default_factory=list)

    @property
    def edgetpu(self) -> bool:
        return self.edgetpu_pcie or self.edgetpu_usb

    def to_dict(self) -> dict:
        return {"model": self.model, "arch": self.arch, "jetson": self.jetson, "coral_board": self.coral_board,
                "raspberry_pi": self.raspberry_pi, "edgetpu_pcie": self.edgetpu_pcie,
                "edgetpu_usb": self.edgetpu_usb, "tensorrt": self.tensorrt, "config": choose_config(self),
                "device": device_of(choose_config(self)), "evidence": self.evidence}


def read_model(root: str = "/") -> str:
    path = os.path.join(root, "proc/device-tree/model")
    try:
        with open(path, "rb") as f:
            return f.read().replace(b"\x00", b"").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def usb_edgetpu(root: str = "/") -> bool:
    for d in glob.glob(os.path.join(root, "sys/bus/usb/devices/*")):
        try:
            with open(os.path.join(d, "idVendor")) as f:
                vendor = f.read().strip().lower()
            with open(os.path.join(d, "idProduct")) as f:
                product = f.read().strip().lower()
        except OSError:
            continue
        if (vendor, product) in EDGETPU_USB_IDS:
            return True
    return False


def tensorrt_importable() -> bool:
    try:
        return importlib.util.find_spec("tensorrt") is not None
    except (ImportError, ValueError):
        return False


def detect(root: str = "/", check_tensorrt: bool = True, arch: Optional[str] = None) -> Detection:
    d = Detection(arch=arch or platform.machine())
    d.model = read_model(root)
    low = d.model.lower()
    if d.model:
        d.evidence.append(f"device-tree model: {d.model}")
    d.jetson = "nvidia jetson" in low or "jetson" in low
    d.coral_board = "coral" in low
    d.raspberry_pi = "raspberry pi" in low
    d.edgetpu_pcie = os.path.exists(os.path.join(root, "dev/apex_0"))
    if d.edgetpu_pcie:
        d.evidence.append("/dev/apex_0 present (PCIe Edge TPU)")
    d.edgetpu_usb = usb_edgetpu(root)
    if d.edgetpu_usb:
        d.evidence.append("USB Edge TPU present (1a6e:089a or 18d1:9302)")
    d.tensorrt = tensorrt_importable() if check_tensorrt else False
    if d.tensorrt:
        d.evidence.append("python module tensorrt importable")
    if not d.evidence:
        d.evidence.append("no Jetson, Coral or Edge TPU found: CPU")
    return d


def choose_config(d: Detection) -> str:
    """Device config name for a detection."""
    low = d.model.lower()
    if d.jetson:
        if "orin" in low:
            return "jetson-orin-nano"
        if "xavier" in low:
            return "jetson-xavier-nx"
        return "jetson-nano"
    if d.coral_board:
        return "coral-devboard"
    if d.edgetpu:
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
    if device == "cpu":
        d = d or detect(check_tensorrt=False)
        return "rpi4-cpu" if (d.raspberry_pi or d.arch in ("aarch64", "arm64")) and not d.jetson else "x86-cpu"
    if device == "coral":
        d = d or detect(check_tensorrt=False)
        return "coral-devboard" if d.coral_board else "coral-usb"
    if device == "jetson":
        d = d or detect(check_tensorrt=False)
        return choose_config(d) if d.jetson else "jetson-orin-nano"
    raise ValueError(f"unknown device {device!r} (cpu, coral, jetson, auto)")
