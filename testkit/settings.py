"""The production settings plus the testkit app: for ``manage.py testkit`` on a live server's data.

LiveServer and the benchmark run their servers on config.settings, and
their set-up commands on this module, so the server itself never has the
testkit command; the two read the same environment (database, Redis).
"""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "testkit"]
