"""What importing the package costs: the inference path loads neither the trainer nor OpenCV."""

import json
import subprocess
import sys

import pytest

import pconv_torch


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                          "print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_importing_the_package_loads_no_submodule_opencv_or_scipy():
    loaded = _modules_after("import pconv_torch")
    assert {m for m in loaded if m.startswith("pconv_torch.")} == set()
    assert not {"cv2", "scipy", "torch"} & loaded


def test_the_inpaint_path_does_not_load_the_trainer_or_opencv():
    loaded = _modules_after("import pconv_torch, pconv_torch.cli\npconv_torch.inpaint\n"
                            "pconv_torch.pretrained('full')\n"
                            "import pconv_torch.evaluate as e\ne.BASELINES")
    assert not {"pconv_torch.training", "pconv_torch.reproduce", "pconv_torch.stream",
                "pconv_torch.monitor", "cv2", "scipy"} & loaded


@pytest.mark.parametrize("name", pconv_torch.__all__)
def test_every_exported_name_resolves_to_what_its_module_defines(name):
    value = getattr(pconv_torch, name)
    module = pconv_torch._LAZY.get(name)
    if module is not None:
        import importlib

        assert value is getattr(importlib.import_module(f"pconv_torch.{module}"), name)
    assert name in dir(pconv_torch)


def test_a_submodule_is_an_attribute_on_first_use():
    import pconv_torch.shipped

    assert pconv_torch.shipped is sys.modules["pconv_torch.shipped"]
    assert pconv_torch.metrics.psnr is sys.modules["pconv_torch.metrics"].psnr


def test_an_unknown_name_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="no_such_thing"):
        pconv_torch.no_such_thing  # noqa: B018


# the other tests of this process imported pconv_torch.shipped already, which runpy notes
@pytest.mark.filterwarnings("ignore:'pconv_torch.shipped' found in sys.modules:RuntimeWarning")
def test_the_documented_reproduce_command_runs_the_exporters_main(monkeypatch, capsys):
    import runpy

    monkeypatch.setattr(sys, "argv", ["python -m pconv_torch.shipped", "--help"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_module("pconv_torch.shipped", run_name="__main__", alter_sys=True)
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "--only" in out and "--weights-dir" in out
