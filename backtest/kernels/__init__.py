"""numba kernels: plain functions over float64 arrays, no pandas, cached between processes."""
