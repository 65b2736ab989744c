"""What every app shares: encryption, the SSRF guard, HTTP helpers, rate limits, metrics, errors.

Imports no app of the portal (import-linter keeps it so)."""
