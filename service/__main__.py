"""`python -m service --model-dir DIR [--port N]`: serves the newest model version in DIR."""

from __future__ import annotations

import argparse
import logging
import sys

from models.recommend.touchpoints import TouchpointConfigError
from service import config, logs
from service.auth import AuthFileError
from service.server import serve_workers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    config.add_arguments(parser)
    try:
        settings = config.load(parser.parse_args(argv))
    except ValueError as error:
        parser.error(str(error))
    logs.configure(settings.log_level, settings.log_format)
    try:
        serve_workers(settings)
    except (OSError, ValueError, TouchpointConfigError, AuthFileError) as error:
        logging.getLogger("service").error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
