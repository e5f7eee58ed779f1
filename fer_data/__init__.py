"""FER-2013 and what is built from it, shared by `trainer`, `convert` and `benchmarks`: the data set
loader, classification metrics, prediction in slices, and test scenes of real faces."""
