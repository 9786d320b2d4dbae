"""``python -m multichat_client``: the multichat command line."""

from multichat_client.cli import main

raise SystemExit(main())
