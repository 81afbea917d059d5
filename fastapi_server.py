#!/usr/bin/env python3
"""ttspilot TTS server: python fastapi_server.py --help"""

import sys

from ttspilot.server.cli import main

if __name__ == "__main__":
    sys.exit(main())
