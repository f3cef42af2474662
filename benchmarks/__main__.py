"""python -m benchmarks: the benchmark suite (same as ``atonix-cli bench``)."""

import sys

from benchmarks.suite import main

sys.exit(main())
