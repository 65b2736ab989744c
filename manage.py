#!/usr/bin/env python
"""Run Django administrative tasks for Seed SMS Portal."""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run the command line given in sys.argv."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
