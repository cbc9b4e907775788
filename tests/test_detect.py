"""Board, Edge TPU and camera detection on simulated filesystem trees, with the identifiers the real
boards report (device-tree model/compatible strings, /dev/apex_N, USB ids), and pycoral device strings.

Sources of the strings: Mendel's Dev Board device tree (fsl-imx8mq-phanbell.dts: model "Freescale i.MX8MQ
Phanbell"), mainline Linux imx8mq-phanbell.dts ("Google i.MX8MQ Phanbell"), Coral's examples-camera
(``'mt8167' in model`` = Dev Board Mini), jetson_stats / jetson-gpio / PlatformDetect issue reports
(/proc/device-tree/model and compatible of Nano, Xavier NX, AGX Xavier "Jetson-AGX", Orin Nano "NVIDIA Orin
Nano Developer Kit", Orin NX, AGX Orin), pycoral's make_interpreter docstring (device strings)."""
import pytest

from edge.config import ConfigError, load_config
from edge.detect import (Camera, CameraFormat, choose_config, config_for_device, describe, describe_cameras, detect,
                         edgetpu_device, list_cameras, parse_edgetpu_device, parse_gst_caps, parse_v4l2_formats)

pytestmark = pytest.mark.minimal  # numpy/PyYAML only: also runs on Python 3.6/3.7/3.8 (tests/test_py_compat.py)


def tree(tmp_path, model=None, compatible=None, apex=0, usb=None, videos=0):
    """A fake root: proc/device-tree/{model,compatible}, dev/apex_N, sys/bus/usb/devices/*/id*, dev/videoN."""
    dt = tmp_path / "proc" / "device-tree"
    if model is not None or compatible:
        dt.mkdir(parents=True)
    if model is not None:
        (dt / "model").write_bytes(model.encode() + b"\x00")
    if compatible:
        (dt / "compatible").write_bytes(b"".join(c.encode() + b"\x00" for c in compatible))
    (tmp_path / "dev").mkdir(exist_ok=True)
    for i in range(apex):
        (tmp_path / "dev" / "apex_{}".format(i)).write_text("")
    for i in range(videos):
        (tmp_path / "dev" / "video{}".format(i)).write_text("")
    for i, (vendor, product) in enumerate(usb or []):
        d = tmp_path / "sys" / "bus" / "usb" / "devices" / "2-{}".format(i + 1)
        d.mkdir(parents=True)
        (d / "idVendor").write_text(vendor + "\n")
        (d / "idProduct").write_text(product + "\n")
    return str(tmp_path)


HUB = ("1d6b", "0003")  # Linux Foundation root hub: present on every USB host, never an Edge TPU
NANO_C = ["nvidia,p3450-0000", "nvidia,jetson-nano", "nvidia,tegra210"]
XNX_C = ["nvidia,p3509-0000+p3668-0001", "nvidia,jetson-xavier-nx", "nvidia,tegra194"]
AGX_C = ["nvidia,p2972-0000", "nvidia,tegra194"]
ORIN_NANO_C = ["nvidia,p3768-0000+p3767-0003", "nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0003",
               "nvidia,p3767-0005", "nvidia,tegra234", "nvidia,tegra23x"]
AGX_ORIN_C = ["nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005", "nvidia,tegra234", "nvidia,tegra23x"]


@pytest.mark.parametrize("model,compatible,apex,usb,arch,config,device", [
    # Coral Dev Board: Mendel's model string has no "coral" in it; its Edge TPU is /dev/apex_0 on PCIe
    ("Freescale i.MX8MQ Phanbell", ["fsl,imx8mq-phanbell", "fsl,imx8mq"], 1, [HUB], "aarch64",
     "coral-devboard", "pci:0"),
    ("Google i.MX8MQ Phanbell", ["google,imx8mq-phanbell", "fsl,imx8mq"], 1, None, "aarch64",
     "coral-devboard", "pci:0"),
    ("Freescale i.MX8MQ Phanbell", None, 1, None, "aarch64", "coral-devboard", "pci:0"),
    # Dev Board Mini: MediaTek MT8167 (compatible; Coral's examples match 'mt8167' in the model)
    ("MediaTek MT8167 Coral Dev Board Mini", ["mediatek,mt8167"], 0, [("18d1", "9302")], "aarch64",
     "coral-devboard-mini", "usb:0"),
    # M.2 / Mini PCIe Accelerator in an x86 PC or a Raspberry Pi 5: pci, not usb
    (None, None, 1, [HUB], "x86_64", "coral-pcie", "pci:0"),
    ("Raspberry Pi 5 Model B Rev 1.0", ["raspberrypi,5-model-b", "brcm,bcm2712"], 1, [HUB], "aarch64",
     "coral-pcie", "pci:0"),
    # USB Accelerator before (Global Unichip 1a6e:089a) and after (Google 18d1:9302) its firmware loads
    (None, None, 0, [HUB, ("1a6e", "089a")], "x86_64", "coral-usb", "usb:0"),
    ("Raspberry Pi 4 Model B Rev 1.4", ["raspberrypi,4-model-b", "brcm,bcm2711"], 0, [HUB, ("18d1", "9302")],
     "aarch64", "coral-usb", "usb:0"),
    # Jetsons: compatible decides the SoC; model strings as /proc/device-tree/model shows them
    ("NVIDIA Jetson Nano Developer Kit", NANO_C, 0, None, "aarch64", "jetson-nano", ""),
    ("NVIDIA Jetson Xavier NX Developer Kit", XNX_C, 0, None, "aarch64", "jetson-xavier-nx", ""),
    ("Jetson-AGX", AGX_C, 0, None, "aarch64", "jetson-xavier-nx", ""),
    ("NVIDIA Orin Nano Developer Kit", ORIN_NANO_C, 0, None, "aarch64", "jetson-orin-nano", ""),
    ("Jetson AGX Orin", AGX_ORIN_C, 0, None, "aarch64", "jetson-orin-nano", ""),
    # model only (no compatible file): the model text decides
    ("NVIDIA Orin NX Developer Kit", None, 0, None, "aarch64", "jetson-orin-nano", ""),
    ("NVIDIA Jetson Nano Developer Kit", None, 0, None, "aarch64", "jetson-nano", ""),
    ("Jetson-AGX", None, 0, None, "aarch64", "jetson-xavier-nx", ""),
    # a Jetson with a USB Accelerator plugged in stays a Jetson
    ("NVIDIA Jetson Nano Developer Kit", NANO_C, 0, [("18d1", "9302")], "aarch64", "jetson-nano", "usb:0"),
    # an i.MX8MQ board that is not a Coral, a Pi without TPU, a plain PC
    ("Freescale i.MX8MQ EVK", ["fsl,imx8mq-evk", "fsl,imx8mq"], 0, None, "aarch64", "rpi4-cpu", ""),
    ("Raspberry Pi 4 Model B Rev 1.4", None, 0, [HUB], "aarch64", "rpi4-cpu", ""),
    (None, None, 0, [HUB], "x86_64", "x86-cpu", ""),
])
def test_real_identifiers(tmp_path, model, compatible, apex, usb, arch, config, device):
    d = detect(tree(tmp_path, model, compatible, apex, usb), check_tensorrt=False, arch=arch)
    assert choose_config(d) == config
    assert edgetpu_device(d) == device
    assert d.evidence
    assert d.to_dict()["config"] == config


def test_devboard_never_opens_usb(tmp_path):
    """The Dev Board's config and its detection agree on the PCIe TPU (the bug: coral-usb with usb:0)."""
    d = detect(tree(tmp_path, "Freescale i.MX8MQ Phanbell", None, apex=1), check_tensorrt=False, arch="aarch64")
    assert d.coral_board == "Coral Dev Board" and d.edgetpu_pcie and not d.edgetpu_usb
    assert load_config(choose_config(d)).edgetpu_device == "pci:0" == edgetpu_device(d)
    assert config_for_device("coral", d) == "coral-devboard"
    assert any("/dev/apex_0" in e for e in d.evidence)


def test_pcie_card_config_uses_pci(tmp_path):
    d = detect(tree(tmp_path, None, None, apex=1), check_tensorrt=False, arch="x86_64")
    assert config_for_device("coral", d) == "coral-pcie"
    assert load_config("coral-pcie").edgetpu_device == "pci:0"
    assert load_config("coral-usb").edgetpu_device == "usb:0"


def test_several_tpus_numbered_like_pycoral(tmp_path):
    root = tree(tmp_path, None, None, apex=0, usb=[("18d1", "9302"), HUB, ("1a6e", "089a")])
    for n in (0, 1, 2, 10):
        (tmp_path / "dev" / "apex_{}".format(n)).write_text("")
    d = detect(root, check_tensorrt=False, arch="x86_64")
    assert [t.device for t in d.edgetpus] == ["pci:0", "pci:1", "pci:2", "pci:3", "usb:0", "usb:1"]
    assert [t.path for t in d.edgetpus][:4] == ["/dev/apex_0", "/dev/apex_1", "/dev/apex_2", "/dev/apex_10"]
    assert [t.state for t in d.edgetpus if t.kind == "usb"] == ["running", "boot"]
    assert edgetpu_device(d) == "pci:0"


def test_explicit_device_on_a_plain_pc(tmp_path):
    d = detect(tree(tmp_path), check_tensorrt=False, arch="x86_64")
    assert config_for_device("cpu", d) == "x86-cpu"
    assert config_for_device("coral", d) == "coral-usb"
    assert config_for_device("jetson", d) == "jetson-orin-nano"
    assert config_for_device("auto", d) == "x86-cpu"
    with pytest.raises(ValueError, match="unknown device"):
        config_for_device("tpu", d)


@pytest.mark.parametrize("text,expected", [
    ("", ("", None)), (":0", ("", 0)), (":3", ("", 3)), ("usb", ("usb", None)), ("usb:1", ("usb", 1)),
    ("pci", ("pci", None)), ("pci:0", ("pci", 0)),
])
def test_pycoral_device_strings(text, expected):
    assert parse_edgetpu_device(text) == expected


@pytest.mark.parametrize("bad", ["usb0", "pcie:0", ":", "usb:", "usb:x", "tpu", "pci:0:1", " usb"])
def test_bad_device_strings(bad):
    with pytest.raises(ValueError, match="usb:N"):
        parse_edgetpu_device(bad)


def test_config_rejects_bad_device_string(tmp_path):
    p = tmp_path / "tpu.yaml"
    p.write_text("device: coral\nbackend: edgetpu\nedgetpu_device: usb0\n")
    with pytest.raises(ConfigError, match=r"tpu\.yaml: edgetpu_device: .*'usb0'"):
        load_config(str(p))


def test_detect_this_machine_runs():
    d = detect()
    assert choose_config(d) in ("x86-cpu", "rpi4-cpu", "coral-usb", "coral-pcie", "coral-devboard",
                                "coral-devboard-mini", "jetson-nano", "jetson-xavier-nx", "jetson-orin-nano")


# -- cameras -------------------------------------------------------------------------------------------
# v4l2-ctl --list-formats-ext of a UVC webcam, v4l-utils >= 1.16 layout
V4L2_NEW = """ioctl: VIDIOC_ENUM_FMT
\tType: Video Capture

\t[0]: 'YUYV' (YUYV 4:2:2)
\t\tSize: Discrete 640x480
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t\t\tInterval: Discrete 0.067s (15.000 fps)
\t\tSize: Discrete 1280x720
\t\t\tInterval: Discrete 0.100s (10.000 fps)
\t[1]: 'MJPG' (Motion-JPEG, compressed)
\t\tSize: Discrete 1280x720
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t\tSize: Discrete 1920x1080
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t\t\tInterval: Discrete 0.040s (25.000 fps)
"""
# v4l-utils 1.14 (Ubuntu 18.04 / JetPack 4.6) layout, with a stepwise size (a CSI bridge)
V4L2_OLD = """ioctl: VIDIOC_ENUM_FMT
\tIndex       : 0
\tType        : Video Capture
\tPixel Format: 'RG10'
\tName        : 10-bit Bayer RGRG/GBGB
\t\tSize: Discrete 3264x2464
\t\t\tInterval: Discrete 0.048s (21.000 fps)
\t\tSize: Discrete 1280x720
\t\t\tInterval: Discrete 0.017s (60.000 fps)

\tIndex       : 1
\tType        : Video Capture
\tPixel Format: 'YUYV'
\tName        : YUYV 4:2:2
\t\tSize: Stepwise 32x32 - 1920x1080 with step 2/2
"""


def test_parse_v4l2_ctl_new_layout():
    fmts = parse_v4l2_formats(V4L2_NEW)
    assert [(f.fourcc, f.description) for f in fmts] == [("YUYV", "YUYV 4:2:2"), ("MJPG", "Motion-JPEG, compressed")]
    assert fmts[0].sizes == ["640x480@30,15", "1280x720@10"]
    assert fmts[1].sizes == ["1280x720@30", "1920x1080@30,25"]


def test_parse_v4l2_ctl_old_layout():
    fmts = parse_v4l2_formats(V4L2_OLD)
    assert [(f.fourcc, f.description) for f in fmts] == [("RG10", "10-bit Bayer RGRG/GBGB"), ("YUYV", "YUYV 4:2:2")]
    assert fmts[0].sizes == ["3264x2464@21", "1280x720@60"]
    assert fmts[1].sizes == ["32x32-1920x1080 step 2/2 (stepwise)"]


def test_parse_metadata_node_has_no_formats():
    assert parse_v4l2_formats("ioctl: VIDIOC_ENUM_FMT\n\tType: Video Capture\n\n") == []


def test_parse_gst_device_monitor_caps():
    caps = ("video/x-raw, format=(string)YUY2, width=(int)640, height=(int)480, pixel-aspect-ratio=(fraction)1/1, "
            "framerate=(fraction)30/1; video/x-raw, format=(string)YUY2, width=(int)1280, height=(int)720, "
            "framerate=(fraction){ 10/1, 5/1 }; image/jpeg, width=(int)1920, height=(int)1080, "
            "framerate=(fraction)30/1")
    fmts = parse_gst_caps(caps)
    assert [f.fourcc for f in fmts] == ["YUY2", "image/jpeg"]
    assert fmts[0].sizes == ["640x480@30/1", "1280x720@{ 10/1, 5/1 }"]
    assert fmts[1].sizes == ["1920x1080@30/1"]


def test_camera_lines():
    cams = [Camera("/dev/video0", [CameraFormat("MJPG", "Motion-JPEG", ["1280x720@30"])]),
            Camera("/dev/video1", [], "no capture formats (a metadata or output node)")]
    assert describe_cameras(cams) == ["  /dev/video0", "    MJPG (Motion-JPEG): 1280x720@30",
                                      "  /dev/video1: no capture formats (a metadata or output node)"]
    assert describe_cameras([]) == ["  no camera found (no /dev/video* device)"]


def test_cameras_without_tools_say_what_to_install(tmp_path, monkeypatch):
    import edge.detect as det
    monkeypatch.setattr(det, "_gst_cameras", lambda: None)
    cams = list_cameras(tree(tmp_path, videos=2), use_v4l2ctl=False)
    assert [c.path for c in cams] == ["/dev/video0", "/dev/video1"]
    assert all("v4l2-ctl" in c.note and not c.formats for c in cams)


def test_list_devices_here_says_no_camera(tmp_path):
    text = describe(tree(tmp_path, "Freescale i.MX8MQ Phanbell", None, apex=1))
    assert "coral-pcie" in text and "coral-devboard" in text
    assert "--device auto -> coral-devboard (coral), Edge TPU device 'pci:0'" in text
    assert text.rstrip().endswith("no camera found (no /dev/video* device)")
