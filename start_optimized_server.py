#!/usr/bin/env python3
"""Probe, plan, prebuild and serve on the best tier: python start_optimized_server.py --help"""

import sys

from ttspilot.launcher.optimized import main

if __name__ == "__main__":
    sys.exit(main())
