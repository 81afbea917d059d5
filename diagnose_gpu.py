#!/usr/bin/env python3
"""Check the driver, CUDA, cuDNN, ONNX Runtime, TensorRT, packages, model and port: python diagnose_gpu.py --help"""

import sys

from ttspilot.diagnose.cli import main

if __name__ == "__main__":
    sys.exit(main())
