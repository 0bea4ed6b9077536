"""Nearest-neighbour distances for initialising Gaussian scales: `simple_knn._C.distCUDA2`."""
