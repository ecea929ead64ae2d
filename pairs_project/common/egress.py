"""Where the system may send requests on a user's behalf (alert webhooks, Telegram): the egress policy.

A webhook URL is typed by a person, and the server then POSTs to it, so without a
policy anyone who can edit a pair can make the server talk to what only it can
reach: Redis on 127.0.0.1:6379, PostgreSQL, its own admin, the cloud metadata
service at 169.254.169.254, the private network. This module decides, without
Django, whether a URL may be reached, and pins the decision to addresses:

- the URL is http or https, has a host and a valid port, and carries no
  credentials (``user:pass@``);
- its host is not this site's own name;
- the host is resolved (every A/AAAA record) and refused if ANY address is not a
  public one: loopback, unspecified, link-local (cloud metadata included), private
  (RFC 1918, unique-local fc00::/7, site-local), shared (CGNAT 100.64/10),
  multicast, reserved or documentation ranges, or an IPv6 form that embeds such an
  IPv4 address (IPv4-mapped, IPv4-compatible, 6to4, NAT64). ``allow_private`` lets
  private ranges through (a receiver on the same private network), never the rest.

The caller then connects to one of the checked addresses itself (``Target``), with
the original name in the Host header and TLS SNI, so a second DNS answer (DNS
rebinding) can never change where the request goes.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``resolver(host, port)`` -> the addresses the host resolves to, as strings.
Resolver = Callable[[str, int], list[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}

_net = ipaddress.ip_network
#: Cloud metadata services: AWS/GCP/Azure/OpenStack/DigitalOcean (and AWS's IPv6 one),
#: AWS ECS task metadata, Alibaba Cloud, Azure's wire server (a public address).
METADATA = {
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200", "168.63.129.16")
}
LOOPBACK = (_net("127.0.0.0/8"), _net("::1/128"))
UNSPECIFIED = (_net("0.0.0.0/8"), _net("::/128"))
LINK_LOCAL = (_net("169.254.0.0/16"), _net("fe80::/10"))
MULTICAST = (_net("224.0.0.0/4"), _net("ff00::/8"))
PRIVATE = (_net("10.0.0.0/8"), _net("172.16.0.0/12"), _net("192.168.0.0/16"), _net("fc00::/7"), _net("fec0::/10"))
SHARED = (_net("100.64.0.0/10"),)
#: IANA's special-purpose ranges that are not globally reachable, listed here rather
#: than left to ``is_global``, whose table differs between Python releases (3.11.7
#: calls 192.0.0.8 global). 240.0.0.0/4 holds the broadcast address.
RESERVED = tuple(
    _net(n)
    for n in (
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "100::/64",
        "100:0:0:1::/64",
        "2001::/23",
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
    )
)
TEREDO = _net("2001::/32")
NAT64 = (_net("64:ff9b::/96"), _net("64:ff9b:1::/48"))
IPV4_COMPATIBLE = _net("::/96")
IPV4_TRANSLATED = _net("::ffff:0:0:0/96")


class EgressRefused(ValueError):
    """The URL may not be reached; the message says why, in words for a form or the log."""


class HostUnresolved(EgressRefused):
    """The host does not resolve (now): refused at save, a transient failure at send."""


@dataclass(frozen=True)
class Target:
    """A URL that passed the policy, and the addresses its host resolved to (all allowed)."""

    url: str
    scheme: str
    host: str  # as resolved: IDNA-encoded, no brackets
    port: int
    netloc: str  # host[:port] as the URL spells it, for the Host header
    addresses: tuple[str, ...]

    @property
    def address(self) -> str:
        """The address to connect to: the resolver's first (RFC 6724 order)."""
        return self.addresses[0]

    @property
    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address: nothing resolves it again."""
        return str(httpx.URL(self.url).copy_with(host=self.address.split("%")[0]))

    @property
    def sni_hostname(self) -> str | None:
        """The name TLS must present and verify the certificate against (None for an address)."""
        return None if _literal(self.host) else self.host


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, IPv4-compatible), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in net for net in NAT64) or address in IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: Address, *, allow_private: bool = False, allow_loopback: bool = False) -> str | None:
    """Why ``address`` may not be reached (a phrase such as "a private address"), or None.

    ``allow_private`` lets RFC 1918, unique-local and site-local addresses through;
    ``allow_loopback`` (tests only: a receiver on this machine) lets loopback through.
    Nothing lets link-local, metadata, unspecified, multicast or reserved ones through.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(address.compressed.split("%")[0])
    if address in METADATA:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        if address in TEREDO:
            return "a Teredo tunnel address"
        inner = _embedded_ipv4(address)
        if inner is not None:
            problem = address_problem(inner, allow_private=allow_private, allow_loopback=allow_loopback)
            if problem is not None:
                return f"{problem} ({inner} inside an IPv6 address)"
            if address.ipv4_mapped is not None:
                return None  # the IPv4 address itself, which is public
    if any(address in net for net in LOOPBACK):
        return None if allow_loopback else "a loopback address (this machine)"
    if any(address in net for net in UNSPECIFIED):
        return "an unspecified address (this machine)"
    if any(address in net for net in LINK_LOCAL):
        return "a link-local address"
    if any(address in net for net in MULTICAST):
        return "a multicast address"
    if any(address in net for net in PRIVATE):
        return None if allow_private else "a private address"
    if any(address in net for net in SHARED):
        return "a shared (carrier-grade NAT) address"
    if any(address in net for net in RESERVED) or not address.is_global:
        return "a reserved address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA), in the system's preferred order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # An IPv4 or IPv6 sockaddr starts with the address as text (the stubs also allow
    # the integer of families a host name never resolves to).
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _own_host(host: str, own_hosts: Iterable[str]) -> bool:
    """Whether ``host`` is one of this site's names (``ALLOWED_HOSTS`` patterns; ``*`` names none)."""
    host = host.rstrip(".").lower()
    for pattern in own_hosts:
        pattern = pattern.lower()
        if pattern.startswith("."):
            if host == pattern[1:] or host.endswith(pattern):
                return True
        elif host == pattern.rstrip("."):
            return True
    return False


def check_url(
    url: str,
    *,
    allow_private: bool = False,
    allow_loopback: bool = False,
    own_hosts: Iterable[str] = (),
    resolver: Resolver | None = None,
    noun: str = "webhook",
    rule: str = "webhooks only go to public receivers",
) -> Target:
    """The ``Target`` of ``url`` if the policy lets it be reached; raises ``EgressRefused`` otherwise.

    Parameters
    ----------
    url
        The URL as stored.
    allow_private
        Let private addresses through (``ALERT_WEBHOOK_ALLOW_PRIVATE``).
    allow_loopback
        Let loopback addresses through: tests only, never a setting of a deployment.
    own_hosts
        This site's own names (``ALLOWED_HOSTS``): refused, whatever they resolve to.
    resolver
        ``resolver(host, port)`` -> addresses; the system's (``system_resolver``) by default.
    noun, rule
        What the URL is and the rule it broke, for the messages: "{noun} host 10.0.0.5 is a
        private address: {rule}".

    Raises
    ------
    HostUnresolved
        The host does not resolve.
    EgressRefused
        Anything else the policy refuses; the message names the problem.
    """
    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise EgressRefused(f"the {noun} URL cannot be read ({exc})") from None
    scheme = parsed.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise EgressRefused(f"a {noun} URL must be http or https, not {scheme or 'without a scheme'}")
    if parsed.userinfo:
        raise EgressRefused(
            f"a {noun} URL may not carry a user name or password (user:pass@); receivers take their token in the path"
        )
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise EgressRefused(f"the {noun} URL has no host")
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise EgressRefused(f"{noun} port {port} is not a port")
    literal = _literal(host)
    if literal is None and _own_host(host, own_hosts):
        raise EgressRefused(f"{noun} host {host} is this site itself")
    try:
        addresses = (resolver or system_resolver)(host, port)
    except (OSError, UnicodeError) as exc:
        raise HostUnresolved(f"{noun} host {host} does not resolve ({exc})") from None
    if not addresses:
        raise HostUnresolved(f"{noun} host {host} does not resolve (no address)")
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise EgressRefused(f"{noun} host {host} resolves to {text!r}, which is not an address") from None
        problem = address_problem(address, allow_private=allow_private, allow_loopback=allow_loopback)
        if problem is None:
            continue
        is_itself = literal is not None and literal == address
        where = f"{noun} host {host} is" if is_itself else f"{noun} host {host} resolves to {text},"
        hint = ""
        if problem == "a private address":
            hint = "; set ALERT_WEBHOOK_ALLOW_PRIVATE=1 to allow private receivers"
        raise EgressRefused(f"{where} {problem}: {rule}{hint}")
    return Target(
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        netloc=parsed.netloc.decode("ascii"),
        addresses=tuple(addresses),
    )
