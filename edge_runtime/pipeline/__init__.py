"""The pipeline: EmotionDetector, the loop over frames, tracks, and the run behind `edge-run`."""
