"""PartialConv2d against nn.Conv2d on the generator's layer shapes (same as ``pconv bench``).

The code lives in :mod:`pconv_torch.benchmark` so that the installed command can run it;
see its docstring for the options.
"""
from pconv_torch.benchmark import main

if __name__ == "__main__":
    main()
