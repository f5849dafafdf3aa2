"""NAS-Bench-101 cells with published facts, shared by the space and the training tests."""
from benchmarks.spaces.nb101 import OPS, NB101Space

SPACE = NB101Space()
C3, C1, MP = OPS

# The Inception-like cell of the official NASBench colab (google-research/nasbench, NASBench.ipynb,
# "Basic usage"), and the cell the dataset returned for it (the printed module_adjacency and
# module_operations): the dataset looked the query up by graph hash, so the two must hash alike.
INCEPTION = SPACE.from_matrix(
    [[0, 1, 1, 1, 0, 1, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 1, 0, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 0]],
    ["input", C1, C3, C3, C3, MP, "output"])
INCEPTION_AS_STORED = SPACE.from_matrix(
    [[0, 1, 1, 1, 1, 0, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 1, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 0]],
    ["input", C3, C1, MP, C3, C3, "output"])
