#!/usr/bin/env python3
"""Start the TTS server on the first tier that works: python start_fallback_server.py --help"""

import sys

from ttspilot.launcher.fallback import main

if __name__ == "__main__":
    sys.exit(main())
