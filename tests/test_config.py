"""Device configs: every shipped YAML validates; errors name the file and the key; --device auto."""
import pytest

from edge.config import ConfigError, DeviceConfig, available_configs, load_config
from edge.detect import choose_config, config_for_device, detect

EXPECTED = {"jetson-nano": "jetson", "jetson-orin-nano": "jetson", "jetson-xavier-nx": "jetson",
            "coral-usb": "coral", "coral-devboard": "coral", "rpi4-cpu": "cpu", "x86-cpu": "cpu"}


def test_shipped_configs_load_and_make_sense():
    found = available_configs()
    assert set(EXPECTED) <= set(found)
    for name, device in EXPECTED.items():
        c = load_config(name)
        assert isinstance(c, DeviceConfig) and c.name == name and c.device == device
        assert c.backend == {"jetson": "tensorrt", "coral": "edgetpu", "cpu": "tflite"}[device]
        assert c.camera.fps > 0 and c.reconnect.max_s >= c.reconnect.initial_s
    nano = load_config("jetson-nano")
    assert nano.platform["jetpack"] == "4.6" and nano.platform["tensorrt"] == "8.2"
    assert "nvarguscamerasrc" in nano.pipelines["csi"] and "rtph264depay" not in nano.pipelines["rtsp"]
    assert load_config("coral-usb").edgetpu_device == "usb:0"
    with pytest.raises(Exception):
        nano.threads = 3  # frozen


def _write(tmp_path, text, name="dev.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("text,key,what", [
    ("backend: tflite\nbakend: onnx\n", "bakend", "unknown key"),
    ("camera: {width: 640, fsp: 30}\n", "camera.fsp", "unknown key"),
    ("camera: {fps: '30fps'}\n", "camera.fps", "expected int"),
    ("threads: 2.5\n", "threads", "expected int"),
    ("threads: true\n", "threads", "expected int"),
    ("reconnect: {initial_s: fast}\n", "reconnect.initial_s", "expected float"),
    ("camera: 5\n", "camera", "expected a mapping"),
    ("backend: cuda\n", "backend", "not one of"),
    ("pipelines: {webcam: 'v4l2src ! {scale}'}\n", "pipelines.webcam", "unknown source kind"),
    ("pipelines: {file: 3}\n", "pipelines.file", "expected str"),
])
def test_validation_errors_name_file_and_key(tmp_path, text, key, what):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert path in msg and f" {key}:" in msg and what in msg


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "camera: {width: 640\n"))
    with pytest.raises(ConfigError, match="no such device config"):
        load_config(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="unknown device config 'nope'.*x86-cpu"):
        load_config("nope")


def test_partial_config_gets_defaults_and_overrides(tmp_path):
    c = load_config(_write(tmp_path, "backend: onnxruntime\ncamera: {width: 320}\n", "mini.yaml"))
    assert c.name == "mini" and c.backend == "onnxruntime" and c.camera.width == 320 and c.camera.fps == 30
    d = c.replace(threads=3, backend=None)
    assert d.threads == 3 and d.backend == "onnxruntime" and c.threads == 0
    with pytest.raises(ConfigError, match="backend"):
        c.replace(backend="cuda")


def test_env_config_dir(tmp_path, monkeypatch):
    (tmp_path / "lab-board.yaml").write_text("device: cpu\nthreads: 1\n")
    monkeypatch.setenv("EDGE_DEVICE_CONFIGS", str(tmp_path))
    assert load_config("lab-board").threads == 1


# -- detection on fake filesystem trees -------------------------------------------------------------
def _tree(tmp_path, model=None, apex=False, usb=None):
    if model is not None:
        (tmp_path / "proc/device-tree").mkdir(parents=True)
        (tmp_path / "proc/device-tree/model").write_bytes(model.encode() + b"\x00")
    if apex:
        (tmp_path / "dev").mkdir()
        (tmp_path / "dev/apex_0").write_text("")
    for i, (v, p) in enumerate(usb or []):
        d = tmp_path / f"sys/bus/usb/devices/1-{i}"
        d.mkdir(parents=True)
        (d / "idVendor").write_text(v + "\n")
        (d / "idProduct").write_text(p + "\n")
    return str(tmp_path)


@pytest.mark.parametrize("model,apex,usb,arch,expected", [
    ("NVIDIA Jetson Nano Developer Kit", False, None, "aarch64", "jetson-nano"),
    ("NVIDIA Jetson Orin Nano Developer Kit", False, None, "aarch64", "jetson-orin-nano"),
    ("NVIDIA Jetson Xavier NX Developer Kit", False, None, "aarch64", "jetson-xavier-nx"),
    ("Freescale i.MX8MQ Phanbell (Coral Dev Board)", True, None, "aarch64", "coral-devboard"),
    ("Raspberry Pi 4 Model B Rev 1.4", False, [("1d6b", "0003"), ("18d1", "9302")], "aarch64", "coral-usb"),
    (None, False, [("1a6e", "089a")], "x86_64", "coral-usb"),
    ("Raspberry Pi 4 Model B Rev 1.4", False, [("1d6b", "0003")], "aarch64", "rpi4-cpu"),
    (None, False, None, "x86_64", "x86-cpu"),
])
def test_detect_fake_trees(tmp_path, model, apex, usb, arch, expected):
    d = detect(_tree(tmp_path, model, apex, usb), check_tensorrt=False, arch=arch)
    assert choose_config(d) == expected
    assert d.evidence


def test_config_for_explicit_device(tmp_path):
    d = detect(_tree(tmp_path), check_tensorrt=False, arch="x86_64")
    assert config_for_device("cpu", d) == "x86-cpu"
    assert config_for_device("coral", d) == "coral-usb"
    assert config_for_device("jetson", d) == "jetson-orin-nano"
    with pytest.raises(ValueError):
        config_for_device("tpu", d)


def test_detect_this_machine_runs():
    d = detect()
    assert choose_config(d) in EXPECTED


def test_builtin_defaults_when_no_yaml(monkeypatch, tmp_path):
    import edge.config as config
    from edge.config import builtin
    monkeypatch.setattr(config, "CONFIG_DIR", tmp_path)          # an installed package: no device_configs/
    monkeypatch.delenv("EDGE_DEVICE_CONFIGS", raising=False)
    c = builtin("coral-usb")
    assert (c.device, c.backend, c.head_backend) == ("coral", "edgetpu", "tflite") and "built-in" in c.description
    assert builtin("jetson-nano").backend == "tensorrt" and builtin("x86-cpu").backend == "tflite"
    assert builtin("x86-cpu") == DeviceConfig(name="x86-cpu", description=builtin("x86-cpu").description,
                                              threads=1)
