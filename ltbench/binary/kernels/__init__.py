"""XNOR-popcount kernels: C sources (CPU, built at first use) and CUDA sources (built on a GPU machine)."""
