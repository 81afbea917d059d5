#!/usr/bin/env python3
"""Measure ttspilot's tiers on this machine, or load-test a running server: python benchmark_performance.py --help"""

import sys

from ttspilot.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
