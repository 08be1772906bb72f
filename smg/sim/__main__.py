"""``python -m smg.sim``: run the simulated engine."""

from __future__ import annotations

import argparse
import sys

from smg.sim.cli import add_arguments, main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m smg.sim", description="Simulated vLLM/SGLang engine."
    )
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
