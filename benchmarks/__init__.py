"""benchmarks: `edge-bench`, the harness that times models and the whole pipeline.

It measures what `edge_runtime` runs (backends, detector, frame loop) and imports `convert`
only to build the model variants it compares. TensorFlow is imported only for the rows that
need it (the Keras and seed-style rows), never at module level, so a runtime-only install can
run every other measurement.
"""
