"""What a server worker does at startup, in a process of its own, released by a line on stdin.

``python -m tests.api.storage.worker DATABASE_URL`` loads the default district from
``$PRACTICE_CIRCLE_CACHE``, prints ``ready``, waits for a line on stdin, then runs
:func:`api.storage.seed.prepare_database` (the migration and seeding every worker's lifespan
runs) and prints ``done``. An error leaves a traceback and a non-zero exit.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import geo
from api.storage.seed import prepare_database
from geo.district import load_district


def main() -> None:
    url = sys.argv[1]
    district = load_district(geo.DEFAULT_DISTRICT, Path(os.environ["PRACTICE_CIRCLE_CACHE"]))
    print("ready", flush=True)
    sys.stdin.readline()
    prepare_database(url, district)
    print("done", flush=True)


if __name__ == "__main__":
    main()
