"""A folder of recorded videos as one job: `edge-run --source recordings/ --out results/`.

Every video under the folder (or named in a list file) is cut into chunks of at most
`--chunk-minutes`, the chunks run on a pool of worker processes (or on Ray actors), each worker
holding one `EmotionDetector`, and each finished video gets its records, its summary and its
timeline under `--out`, written atomically. A manifest makes the job resumable: a rerun skips
the videos already done with the same bytes, model and settings. See `job.run_job`.
"""
