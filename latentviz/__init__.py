"""latentviz: look inside the latent spaces of language models."""

__version__ = "0.1.0"
