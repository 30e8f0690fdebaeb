"""Files: checkpoints (ours and foreign layouts), images and video, and where the bundled files live."""
