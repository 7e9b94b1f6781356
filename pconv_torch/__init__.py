"""PyTorch implementation of partial-convolution GAN inpainting."""
