"""The conda environment, the pip metadata and the lock file describe the same dependencies."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from the PyPI names in pyproject.toml
CONDA_TO_PYPI = {"pytorch": "torch", "opencv": "opencv-python-headless"}
CONDA_ONLY = {"python", "pip"}


def _split(requirement):
    """'numpy>=1.26' -> ('numpy', '>=1.26') with the name normalised as PEP 503 does."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", requirement)
    name, spec = match.groups()
    return re.sub(r"[-_.]+", "-", name).lower(), spec.replace(" ", "")


def pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return dict(_split(r) for r in reqs)


def environment_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    reqs = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            reqs.update(_split(r) for r in dep["pip"])
            continue
        name, spec = _split(dep)
        if name in CONDA_ONLY:
            continue
        reqs[CONDA_TO_PYPI.get(name, name)] = spec
    return reqs


def test_environment_yml_matches_pyproject():
    assert environment_requirements() == pyproject_requirements()


def test_lock_file_pins_every_direct_dependency_within_its_range():
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[_split(name)[0]] = version.strip()
    for name, spec in pyproject_requirements().items():
        assert name in pins, f"{name} is not pinned in requirements/constraints.txt"
        assert Version(pins[name]) in SpecifierSet(spec), f"{name}=={pins[name]} is outside {spec}"
    assert pins["torch"] == "2.13.0"
