"""Keep outbound HTTP to addresses outsiders choose away from this machine and its networks.

MMS media links come from VoIP.ms webhooks and HTTP destinations from tenant administrators;
either could otherwise point a worker at 127.0.0.1, the LAN or the cloud metadata service.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 6052's well-known NAT64 prefix: the gateway connects to the IPv4 address in the last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class AddressRefused(Exception):
    """Raise when a URL leads to an address outbound HTTP may not reach; retrying cannot help."""

    code = "address_refused"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HostUnresolved(Exception):
    """Raise when a URL's host name cannot be resolved now; a later try may succeed."""

    code = "connection_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def allowed_networks() -> list[IPNetwork]:
    """Return the networks of OUTBOUND_HTTP_ALLOWED_NETWORKS, reachable although not public."""
    entries = getattr(settings, "OUTBOUND_HTTP_ALLOWED_NETWORKS", [])
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip()]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address a mapped, 6to4 or NAT64 IPv6 address leads to, if it has one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_public(address: IPAddress) -> bool:
    """Return whether the address belongs to the public Internet."""
    # Python 3.11's is_global alone lets multicast through, so every flag is asked.
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def address_is_allowed(address: IPAddress) -> bool:
    """Return whether outbound HTTP may connect to the address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            # The packets end at the IPv4 address, so that is the one to judge.
            return address_is_allowed(embedded)
    if any(address in network for network in allowed_networks()):
        return True
    return _is_public(address)


def _refusal(host: str, address: IPAddress) -> AddressRefused:
    """Return the refusal of a host whose address is not allowed."""
    return AddressRefused(f'the address of "{host}" is not public ({address})')


def url_address_resolve(*, url: str) -> str:
    """Resolve the URL's host and return an address to connect to, unless any is not allowed."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    except ValueError:
        raise AddressRefused("the address is not a usable URL") from None
    host = parts.hostname
    if not host:
        raise AddressRefused("the address names no host")
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError:
        raise AddressRefused(f'"{host}" is not a usable host name') from None
    except OSError:
        raise HostUnresolved(f'could not resolve "{host}"') from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(entry[4][0]) for entry in found))
    if not addresses:
        raise HostUnresolved(f'could not resolve "{host}"')
    for address in addresses:
        # One private address among public ones is enough: the connection may pick any of them.
        if not address_is_allowed(address):
            raise _refusal(host, address)
    return str(addresses[0])


def url_literal_host_check(*, url: str) -> None:
    """Raise AddressRefused if the URL's host is "localhost" or an address that is not allowed."""
    # Host names are not looked up: what they resolve to at save time proves nothing later.
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return
    if host == "localhost" or host.endswith(".localhost"):
        address: IPAddress = ipaddress.IPv4Address("127.0.0.1")
    else:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return
    if not address_is_allowed(address):
        raise _refusal(host, address)
