"""`python -m benchmarks`: run pplc's benchmarks, write their JSON and render docs/benchmarks.md (see run.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run import main  # noqa: E402

sys.exit(main())
