"""`python -m tep_operator` runs the operator, like `tep operator`."""

import sys

from tep_operator.cli import main

sys.exit(main(["operator", *sys.argv[1:]]))
