"""Manage the VoIP.ms sandbox: accounts, DIDs, inbound messages, the outbox and fault switches."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from trunks.voipms.sandbox.models import FaultMode, NumberFormat, SandboxAccount, SandboxDid, Via
from trunks.voipms.sandbox.services import (
    EASTERN,
    SandboxError,
    sandbox_account_ensure,
    sandbox_account_reset_faults,
    sandbox_did_configure,
    sandbox_inbound_emit,
    sandbox_outbox,
)

FAULT_MODE_NAMES = ["none", *[mode for mode in FaultMode.values if mode]]


def _where(url: str) -> str:
    """Return where a URL points without its path, which carries the portal's secret token."""
    if not url:
        return "none"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…"


class Command(BaseCommand):
    """Set up and drive the local VoIP.ms sandbox."""

    help = "Manage the VoIP.ms sandbox: account, did, emit, outbox, reset-faults."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare one sub-command per task."""
        commands = parser.add_subparsers(dest="subcommand", required=True)

        account = commands.add_parser("account", help="Create or update a sandbox account.")
        account.add_argument("--username", required=True, help="VoIP.ms login email")
        account.add_argument("--api-password", help="API password (required for a new account)")
        account.add_argument(
            "--did", action="append", default=[], help="DID to attach (repeatable)"
        )
        account.add_argument(
            "--ip-allow", action="append", help="allow-list entry or entries (repeatable)"
        )
        account.add_argument("--daily-cap", type=int)
        account.add_argument("--latency-ms", type=int)
        account.add_argument("--fault-mode", choices=FAULT_MODE_NAMES)
        account.add_argument("--fault-rate", type=float)
        account.add_argument("--timeout-sleep-s", type=float)
        account.add_argument("--delivery-delay-s", type=int)
        account.add_argument("--api-enabled", action=argparse.BooleanOptionalAction)

        did = commands.add_parser("did", help="Configure the messaging settings of a DID.")
        did.add_argument("--did", required=True)
        did.add_argument("--webhook-url")
        did.add_argument("--callback-url", help="GET template with {FROM} {TO} {MESSAGE} …")
        did.add_argument("--format", dest="number_format", choices=NumberFormat.values)
        did.add_argument("--sms", dest="sms_enabled", action=argparse.BooleanOptionalAction)
        did.add_argument("--mms", dest="mms_available", action=argparse.BooleanOptionalAction)
        did.add_argument("--webhook", dest="webhook_enabled", action=argparse.BooleanOptionalAction)
        did.add_argument(
            "--callback", dest="callback_enabled", action=argparse.BooleanOptionalAction
        )
        did.add_argument("--callback-retry", action=argparse.BooleanOptionalAction)

        emit = commands.add_parser("emit", help="Text a DID from a handset and push it.")
        emit.add_argument("--did", required=True)
        emit.add_argument("--from", dest="from_number", required=True)
        emit.add_argument("--text", default="")
        emit.add_argument("--media", action="append", default=[], help="media URL (repeatable)")
        emit.add_argument("--via", choices=Via.values, default=Via.WEBHOOK)

        outbox = commands.add_parser("outbox", help="Print what the portal sent.")
        outbox.add_argument("--did")
        outbox.add_argument("--contact")
        outbox.add_argument("--limit", type=int, default=20)

        reset = commands.add_parser("reset-faults", help="Switch latency and faults off.")
        reset.add_argument("--username", help="only this account (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the chosen sub-command."""
        handlers = {
            "account": self.account,
            "did": self.did,
            "emit": self.emit,
            "outbox": self.outbox,
            "reset-faults": self.reset_faults,
        }
        try:
            handlers[options["subcommand"]](options)
        except SandboxError as error:
            raise CommandError(error.message) from None

    def account(self, options: dict[str, Any]) -> None:
        """Create or update an account and print it."""
        fault_mode = options["fault_mode"]
        account = sandbox_account_ensure(
            username=options["username"],
            api_password=options["api_password"],
            dids=options["did"],
            api_enabled=options["api_enabled"],
            ip_allowlist=",".join(options["ip_allow"]) if options["ip_allow"] else None,
            daily_send_cap=options["daily_cap"],
            latency_ms=options["latency_ms"],
            fault_mode="" if fault_mode == "none" else fault_mode,
            fault_rate=options["fault_rate"],
            timeout_sleep_s=options["timeout_sleep_s"],
            delivery_delay_s=options["delivery_delay_s"],
        )
        self.stdout.write(self._describe_account(account))

    def _describe_account(self, account: SandboxAccount) -> str:
        """Return a summary of an account, without its password."""
        dids = ", ".join(account.dids.values_list("did", flat=True)) or "none"
        fault = (
            f"{account.fault_mode} at rate {account.fault_rate:g}" if account.fault_mode else "none"
        )
        return (
            f"Account {account.username}: API {'on' if account.api_enabled else 'off'}; "
            f"allow-list {account.ip_allowlist.strip() or '(empty)'}; "
            f"cap {account.daily_send_cap}/day; latency {account.latency_ms} ms; fault {fault}; "
            f"DIDs {dids}"
        )

    def did(self, options: dict[str, Any]) -> None:
        """Configure a DID and print it."""
        sandbox_did = sandbox_did_configure(
            did=options["did"],
            webhook_url=options["webhook_url"],
            webhook_enabled=options["webhook_enabled"],
            callback_url=options["callback_url"],
            callback_enabled=options["callback_enabled"],
            callback_retry=options["callback_retry"],
            number_format=options["number_format"],
            sms_enabled=options["sms_enabled"],
            mms_available=options["mms_available"],
        )
        self.stdout.write(self._describe_did(sandbox_did))

    def _describe_did(self, sandbox_did: SandboxDid) -> str:
        """Return a summary of a DID, with its URLs cut to their host."""

        def flag(value: bool) -> str:
            """Return a switch as on or off."""
            return "on" if value else "off"

        return (
            f"DID {sandbox_did.did} ({sandbox_did.account.username}): "
            f"SMS {flag(sandbox_did.sms_available and sandbox_did.sms_enabled)}, "
            f"MMS {flag(sandbox_did.mms_available)}, format {sandbox_did.number_format}; "
            f"webhook {_where(sandbox_did.webhook_url)} ({flag(sandbox_did.webhook_enabled)}); "
            f"callback {_where(sandbox_did.callback_url)} "
            f"({flag(sandbox_did.callback_enabled)}, retry {flag(sandbox_did.callback_retry)})"
        )

    def emit(self, options: dict[str, Any]) -> None:
        """Push a message from a handset to a DID and print the portal's answer."""
        message = sandbox_inbound_emit(
            did=options["did"],
            from_number=options["from_number"],
            text=options["text"],
            media_urls=options["media"],
            via=options["via"],
        )
        label = f"{message.kind.upper()} {message.provider_id}"
        if not message.delivered_to_portal:
            status = message.portal_http_status
            raise CommandError(
                f"{label} recorded; HTTP {status if status is not None else 'none'}: "
                f"{message.portal_error}"
            )
        self.stdout.write(f"{label} pushed by {message.via}: HTTP {message.portal_http_status}")

    def outbox(self, options: dict[str, Any]) -> None:
        """Print the latest messages the portal sent, oldest first."""
        sent = sandbox_outbox(did=options["did"], contact=options["contact"])
        latest = list(sent.reverse()[: max(options["limit"], 1)])[::-1]
        if not latest:
            self.stdout.write("The portal has sent nothing.")
            return
        now = timezone.now()
        delays = dict(SandboxAccount.objects.values_list("pk", "delivery_delay_s"))
        for message in latest:
            when = message.created_at.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S ET")
            status = message.carrier_status(
                now=now, delivery_delay_s=delays.get(message.account_id, 0)
            )
            media = f" [{len(message.media)} media]" if message.media else ""
            self.stdout.write(
                f"{when}  {message.kind.upper()} {message.provider_id}  "
                f"{message.did} -> {message.contact}  ({status}){media}  {message.message}"
            )

    def reset_faults(self, options: dict[str, Any]) -> None:
        """Switch latency and faults off and print how many accounts changed."""
        count = sandbox_account_reset_faults(username=options["username"])
        self.stdout.write(f"Faults and latency switched off on {count} account(s).")
