"""Where frames come from: webcams, streams, video files, images and folders of images."""
