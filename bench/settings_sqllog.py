"""The project's settings with every SQL statement logged (DEBUG must be true): for
`python -m bench.sqlcount` only."""

from dashboard.settings import *  # noqa: F403
from dashboard.settings import LOGGING

LOGGING = {**LOGGING, "loggers": {"django.db.backends": {"level": "DEBUG"}}}
