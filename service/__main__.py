"""`python -m service --model-dir DIR [--port N]`: serves the newest model version in DIR."""

from __future__ import annotations

import argparse
import logging
import sys

from models.recommend.touchpoints import TouchpointConfigError
from service import config
from service.server import serve_workers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    config.add_arguments(parser)
    try:
        settings = config.load(parser.parse_args(argv))
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        serve_workers(settings)
    except (OSError, ValueError, TouchpointConfigError) as error:
        logging.getLogger("service").error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
