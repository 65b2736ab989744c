"""Benchmark scripts; a package only so gunicorn can import bench.bench_settings."""
