"""trainer: fits the emotion CNN on FER-2013 (`edge-train`).

Imports TensorFlow; labels, preprocessing and data reading come from `edge_runtime`.
"""
