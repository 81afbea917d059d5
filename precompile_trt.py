#!/usr/bin/env python3
"""Build the compiled caches each tier loads (optimized ONNX graphs, TensorRT engines) ahead of the first start.

    python precompile_trt.py                      # every tier this machine can build, embedded voice
    python precompile_trt.py --tier full --force  # rebuild the TensorRT FP16 engine
    python precompile_trt.py --list               # what is cached and whether it is valid here

The logic lives in ttspilot.accel.precompile.
"""

import sys

from ttspilot.accel.precompile import main

if __name__ == "__main__":
    sys.exit(main())
