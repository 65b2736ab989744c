"""Inbound flow: receive (the webhook URL), store, process (dedupe, route), rules, destinations,
media, and poll (backfill from VoIP.ms history). See ARCHITECTURE.md, "Inbound flow"."""
