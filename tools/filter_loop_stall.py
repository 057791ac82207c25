"""Alias: `python tools/filter_loop_stall.py` (named in mesh/filter/offload.py) runs
tools/dev/filter_loop_stall.py."""

import runpy
from pathlib import Path

if __name__ == "__main__":
    runpy.run_path(
        str(Path(__file__).with_name("dev") / "filter_loop_stall.py"), run_name="__main__"
    )
