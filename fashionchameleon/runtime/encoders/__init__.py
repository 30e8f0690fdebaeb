"""Latent codec and prompt encoder: the protocols the stream uses, and the tiny built-in ones."""
