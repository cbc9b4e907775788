"""Generate tests/fakes/tensorrt_api.json from NVIDIA/TensorRT's pybind11 binding sources.

Usage (needs a clone of https://github.com/NVIDIA/TensorRT with its tags)::

    python tests/fakes/gen_tensorrt_api.py /path/to/TensorRT > tests/fakes/tensorrt_api.json

For each release tag in ``RELEASES`` it reads the binding sources with ``git show <tag>:<file>`` and
records, for the classes and enums the edge-action TensorRT code path can touch (``CLASSES``,
``ENUMS``), every Python-visible name: ``.def``/``.def_property*``/``.def_readwrite``/``.def_static``
members, base classes, enum ``.value`` members, plus the module-level ``m.def``/``m.attr`` names and
the ``def``s of the package's ``tensorrt/__init__.py``. The fake ``tensorrt`` modules
(tests/fakes/fake_tensorrt.py) expose exactly these names and raise AttributeError for any other.
Text-level parsing of pybind11 code (no C++ toolchain): good enough for these files, checked by
tests/test_tensorrt_fakes.py against facts quoted from the sources.
"""
import json
import re
import subprocess
import sys

RELEASES = [  # (our label, git tag): JetPack 4.6, JetPack 5 / x86 8.6, JetPack 6, pip today
    ("8.2", "8.2.1"),
    ("8.6", "v8.6.1"),
    ("10", "v10.3.0"),
    ("11", "v11.1"),
]
FILES = ["python/src/infer/pyCore.cpp", "python/src/infer/pyFoundationalTypes.cpp", "python/src/infer/pyGraph.cpp",
         "python/src/infer/pyInt8.cpp", "python/src/parsers/pyOnnx.cpp", "python/src/pyTensorRT.cpp"]
INIT_FILES = ["python/packaging/tensorrt/__init__.py", "python/packaging/bindings_wheel/tensorrt/__init__.py"]
CLASSES = ["ILogger", "Logger", "Builder", "IBuilderConfig", "INetworkDefinition", "ITensor", "OnnxParser",
           "ParserError", "Runtime", "ICudaEngine", "IExecutionContext", "IHostMemory", "IInt8Calibrator",
           "IInt8EntropyCalibrator2", "Dims", "IOptimizationProfile"]
ENUMS = ["Severity", "BuilderFlag", "NetworkDefinitionCreationFlag", "MemoryPoolType", "TensorIOMode", "DataType",
         "CalibrationAlgoType", "OnnxParserFlag", "EngineCapability"]
MEMBER_RE = re.compile(r'\.(def|def_property|def_property_readonly|def_readwrite|def_readonly|def_static|'
                       r'def_property_readonly_static)\(\s*"(\w+)"')
VALUE_RE = re.compile(r'\.value\(\s*"(\w+)"')


def git_show(repo, tag, path):
    r = subprocess.run(["git", "-C", repo, "show", "%s:%s" % (tag, path)], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    return r.stdout.decode("utf-8", "replace") if r.returncode == 0 else None


def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    return re.sub(r'//[^\n]*', "", src)


def statement_end(src, i):
    """Index of the ';' ending the statement that starts at ``i`` (depth- and string-aware)."""
    depth, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == '"':
            i += 1
            while i < n and src[i] != '"':
                i += 2 if src[i] == "\\" else 1
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == ";" and depth <= 0:
            return i
        i += 1
    return n


def template_args(src, i):
    """``src[i]`` is '<'; returns (args text, index after the matching '>')."""
    depth, j = 0, i
    while j < len(src):
        if src[j] == "<":
            depth += 1
        elif src[j] == ">":
            depth -= 1
            if depth == 0:
                return src[i + 1:j], j + 1
        j += 1
    return src[i + 1:], len(src)


def split_top(text):
    parts, depth, cur = [], 0, ""
    for c in text:
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += c
    return parts + ([cur.strip()] if cur.strip() else [])


DECL_RE = re.compile(r'\s*(\w+)?\s*[({]\s*(\w+)\s*,\s*"(\w+)"')


def parse_file(src, path, out):
    src = strip_comments(src)
    variables = {}
    for m in re.finditer(r"py::(class_|enum_)<", src):
        args, j = template_args(src, m.end() - 1)
        d = DECL_RE.match(src, j)
        if not d:
            continue
        var, parent, name = d.group(1), d.group(2), d.group(3)
        end = statement_end(src, d.end())
        body = src[d.end():end]
        cpp = split_top(args)
        if m.group(1) == "class_":
            members = sorted(set(x.group(2) for x in MEMBER_RE.finditer(body)))
            entry = out["classes"].setdefault(name, {"cpp": cpp[0], "bases": [], "members": [], "file": path})
            entry["bases"] = [b for b in cpp[1:] if "<" not in b and not b.startswith(("std::", "py::", "Py", "py"))]
            entry["members"] = sorted(set(entry["members"]) | set(members))
            if var:
                variables[var] = name
        else:
            vals = []  # source order: the enum's integer values follow it
            for v in VALUE_RE.findall(body):
                if v not in vals:
                    vals.append(v)
            owner = None if parent == "m" else variables.get(parent, parent)
            out["enums"][name] = {"values": vals, "parent": owner, "file": path}
    for var, name in variables.items():  # later `var.def(...)` statements
        for m in re.finditer(r"\b%s\s*\.def" % re.escape(var), src):
            body = src[m.start():statement_end(src, m.start())]
            out["classes"][name]["members"] = sorted(set(out["classes"][name]["members"])
                                                     | set(x.group(2) for x in MEMBER_RE.finditer(body)))
    out["module"].update(re.findall(r'\bm\.def\(\s*"(\w+)"', src))
    out["module"].update(re.findall(r'\bm\.attr\(\s*"(\w+)"\s*\)\s*=', src))


def surface(repo, tag):
    out = {"classes": {}, "enums": {}, "module": set()}
    files = []
    for path in FILES:
        src = git_show(repo, tag, path)
        if src is not None:
            parse_file(src, path, out)
            files.append(path)
    for path in INIT_FILES:
        src = git_show(repo, tag, path)
        if src is not None:
            out["module"].update(re.findall(r"^def (\w+)\(", src, flags=re.M))
            out["module"].update(re.findall(r"^(__version__)\s*=", src, flags=re.M))
            files.append(path)
    cpp_to_py = {v["cpp"]: k for k, v in out["classes"].items()}
    classes = {}
    for name in CLASSES:
        if name in out["classes"]:
            c = out["classes"][name]
            classes[name] = {"bases": [cpp_to_py.get(b, b) for b in c["bases"]], "members": c["members"],
                             "file": c["file"]}
    enums = {k: out["enums"][k] for k in ENUMS if k in out["enums"]}
    commit = subprocess.run(["git", "-C", repo, "rev-list", "-n1", tag], stdout=subprocess.PIPE).stdout.decode().strip()
    return {"tag": tag, "commit": commit, "files": files, "classes": classes, "enums": enums,
            "module": sorted(out["module"])}


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: gen_tensorrt_api.py PATH_TO_TENSORRT_GIT_CLONE > tests/fakes/tensorrt_api.json")
    data = {"source": "https://github.com/NVIDIA/TensorRT", "generator": "tests/fakes/gen_tensorrt_api.py",
            "versions": {label: surface(argv[1], tag) for label, tag in RELEASES}}
    json.dump(data, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
