#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from config.env import checkout_secret_key

    checkout_secret_key(Path(__file__).resolve().parent)  # var/secret_key, as scripts/run made it
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
