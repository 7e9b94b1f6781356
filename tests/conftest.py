"""Shared test configuration: devices to cross-test on, the ``cuda`` marker, and hypothesis
profiles."""
import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,  # the first call of a Numba kernel includes its compile time
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

CUDA_AVAILABLE = torch.cuda.is_available()



def pytest_runtest_setup(item):
    """Tests marked ``cuda`` (``pytest -m cuda`` selects them) are skipped, with the reason,
    on a machine without a CUDA GPU."""
    if item.get_closest_marker("cuda") is not None and not CUDA_AVAILABLE:
        pytest.skip("no CUDA GPU on this machine")


# Every torch cross-test runs on the CPU, and on CUDA when a GPU is present; without one the
# CUDA cases are reported as skipped rather than silently left out.
TORCH_DEVICES = [
    pytest.param("cpu", id="torch-cpu"),
    pytest.param("cuda", id="torch-cuda", marks=pytest.mark.cuda),
]


@pytest.fixture(params=TORCH_DEVICES)
def torch_device(request):
    """A torch device name: 'cpu', then 'cuda' (skipped when absent)."""
    return request.param


@pytest.fixture(scope="module")
def tiny_generator():
    """An untrained generator at 1/8 width (eval mode, fill 0.4, recorded scale 32x32)."""
    from pconv_torch.networks import Generator

    torch.manual_seed(0)
    return Generator(width=0.125, fill=(0.4, 0.4, 0.4), image_size=32).eval()


@pytest.fixture(scope="module")
def narrow_generator():
    """An untrained poster generator at 1/16 width, seeded: the poster's layers and masks
    (masks and window counts do not depend on the width) at a fraction of the cost."""
    from pconv_torch.networks import Generator

    torch.manual_seed(0)
    return Generator(width=1 / 16)
