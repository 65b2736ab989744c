"""A faithful local VoIP.ms: REST API, inbound webhooks and callbacks, and a phone simulator."""
