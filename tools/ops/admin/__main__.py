"""`python -m tools.ops.admin`: llmaas-admin."""

import sys

from tools.ops.admin.cli import main

sys.exit(main())
