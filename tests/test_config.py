"""Device configs: every shipped YAML validates; errors name the file and the key (detection: test_detect.py)."""
import pytest

from edge.config import ConfigError, DeviceConfig, available_configs, load_config

pytestmark = pytest.mark.minimal  # numpy/PyYAML only: also runs on Python 3.6/3.7/3.8 (tests/test_py_compat.py)

EXPECTED = {"jetson-nano": "jetson", "jetson-orin-nano": "jetson", "jetson-xavier-nx": "jetson",
            "coral-usb": "coral", "coral-devboard": "coral", "coral-pcie": "coral",
            "coral-devboard-mini": "coral", "rpi4-cpu": "cpu", "x86-cpu": "cpu"}


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


def test_builtin_defaults_when_no_yaml(monkeypatch, tmp_path):
    import edge.config as config
    from edge.config import builtin
    monkeypatch.setattr(config, "config_dirs", lambda: [tmp_path])  # an installed package without any YAML
    c = builtin("coral-usb")
    assert (c.device, c.backend, c.head_backend) == ("coral", "edgetpu", "tflite") and "built-in" in c.description
    assert builtin("jetson-nano").backend == "tensorrt" and builtin("x86-cpu").backend == "tflite"
    assert builtin("x86-cpu") == DeviceConfig(name="x86-cpu", description=builtin("x86-cpu").description,
                                              threads=1)
