"""What the benchmark scripts share: the machine's name and the generator's layer shapes."""
from __future__ import annotations

import platform

import torch


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def generator_pconv_layers(size: int = 128):
    """The generator's eight partial convolutions before its 3-channel head, read from the live
    ``pconv_torch.Generator()`` (poster Table 1).

    Returns a list of ``(name, input groups, C_out, k, stride, padding, size // input size)``;
    a decoder layer's input groups are the upsampled features and the skip, e.g. ``(256, 128)``.
    """
    from pconv_torch import Generator, architecture_table

    generator = Generator()
    rows = architecture_table(generator, input_size=(1, 3, size, size))
    layers = []
    for index, row in enumerate(r for r in rows if r["layer"] == "PConv"):
        if index == 8:
            break
        conv = generator.layers[index].conv
        groups = tuple(int(c) for c in str(row["in"]).split("+"))
        input_size = row["output"][1] * row["S"]
        name = f"enc{index + 1}" if row["S"] == 2 else f"dec{index + 1}"
        layers.append((name, groups, row["F"], row["K"], row["S"], conv.padding[0], size // input_size))
    return layers
