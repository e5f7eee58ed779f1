"""Model files and their checks: formats, metadata, checksums, the bundled model."""
