"""CosyVoice support, ahead of its engine: the upstream-tree path rule and the tiny model maker.

The engine that serves CosyVoice models comes with issue 14. Nothing here imports torch or the
official `cosyvoice` package at import time, so `ttspilot.engines` stays importable without them.
"""
