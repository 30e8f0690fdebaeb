"""What a ComfyUI user runs: configs, the DiT, the streaming session, codecs, files. Never imports the lab."""
