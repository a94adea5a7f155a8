"""`python -m pplc`: the `pplc` command line."""
import sys

from .cli import main

sys.exit(main())
