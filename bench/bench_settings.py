"""Settings for benches that serve extra views: the portal's settings with bench.baseline_urls."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.baseline_urls"
