"""Outbound flow: send (checks and outbox rows), rules (outbound rules and routes), deliver (one
VoIP.ms call per attempt), reconcile (unknown outcomes, carrier status). See ARCHITECTURE.md."""
