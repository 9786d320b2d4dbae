"""``multichat-admin``: Django's management commands for an installed server wheel.

A wheel carries no manage.py, so its console script ``multichat-admin`` (and
``python -m config.manage``) runs this: ``multichat-admin migrate``,
``multichat-admin collectstatic --noinput``, ``multichat-admin createsuperuser``.
The settings are config.settings unless DJANGO_SETTINGS_MODULE says otherwise.
"""

import os
import sys

from django.core.management import execute_from_command_line


def main() -> None:
    """Run the management command named on the command line."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
