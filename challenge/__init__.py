"""MIT/IEEE Sparse DNN Graph Challenge: official I/O, exact inference (CPU and a fused GPU
kernel), problem generator, Dask scale-out."""
