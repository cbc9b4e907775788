"""Build shim for Python 3.6 (JetPack 4.6): its newest setuptools (59.6) cannot read pyproject's [project]
table, so this file passes the same metadata to setup(), read from pyproject.toml (one place decides it).
With setuptools >= 61 (Python 3.7+) pyproject.toml is read by setuptools itself and this adds nothing."""
import glob

import setuptools
from setuptools import find_packages, setup


def _major(version):
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def _legacy_kwargs():
    import tomli  # build requirement on Python < 3.7 (pyproject.toml [build-system])

    with open("pyproject.toml", "rb") as f:
        data = tomli.load(f)
    project, tool = data["project"], data.get("tool", {}).get("setuptools", {})
    with open(project.get("readme", "README.md"), encoding="utf-8") as f:
        readme = f.read()
    license_ = project.get("license", "")
    return dict(
        name=project["name"], version=project["version"], description=project.get("description", ""),
        long_description=readme, long_description_content_type="text/markdown",
        license=license_ if isinstance(license_, str) else license_.get("text", ""),
        python_requires=project.get("requires-python"),
        install_requires=project.get("dependencies", []),
        extras_require=project.get("optional-dependencies", {}),
        entry_points={"console_scripts": ["{} = {}".format(k, v) for k, v in project.get("scripts", {}).items()]},
        packages=find_packages(include=tool.get("packages", {}).get("find", {}).get("include", ["*"])),
        package_data=tool.get("package-data", {}),
        data_files=[(dest, sorted(f for p in pats for f in glob.glob(p)))
                    for dest, pats in tool.get("data-files", {}).items()],
    )


if _major(setuptools.__version__) < 61:
    setup(**_legacy_kwargs())
else:
    setup()
