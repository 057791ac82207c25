"""`python -m tools.bench`: the side-by-side comparison (`make bench`)."""

from tools.bench.compare import main

main()
