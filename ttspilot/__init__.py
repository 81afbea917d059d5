"""ttspilot: a self-tuning launcher and FastAPI server for neural text-to-speech."""

__version__ = "0.1.0"
