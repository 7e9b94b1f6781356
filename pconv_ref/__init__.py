"""From-scratch NumPy/Numba reference for partial-convolution inpainting."""
