"""`python -m benchmark.cli` (and `torchrun -m benchmark.cli run ...`)."""

import sys

from benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
