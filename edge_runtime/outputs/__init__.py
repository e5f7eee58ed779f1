"""Where results go: records, annotated video and images, the window, and safe file writing."""
