"""The egress policy of webhooks (``pairs_project.common.egress``): pure, no database, no network.

Every case goes through ``check_url`` with a fake resolver, so a host name's
addresses are the table's, and no test depends on this machine's DNS.
"""

from __future__ import annotations

import ipaddress

import pytest

from pairs_project.common.egress import EgressRefused, HostUnresolved, address_problem, check_url


def resolver(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host in table:
            return table[host]
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            raise OSError(f"[Errno -2] Name or service not known: {host}") from None

    return resolve


DNS = resolver(
    {
        "hooks.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
        "localhost": ["127.0.0.1", "::1"],
        "mixed.example.com": ["93.184.216.34", "10.0.0.5"],  # one bad record is enough
        "internal.example.com": ["10.0.0.5"],
        "metadata.google.internal": ["169.254.169.254"],
        "rebind.example.com": ["127.0.0.1"],
        "v6private.example.com": ["fd12:3456::1"],
        "2130706433": ["127.0.0.1"],  # what the C resolver makes of a decimal address
        "0x7f.1": ["127.0.0.1"],
    }
)


@pytest.mark.parametrize(
    "url,problem",
    [
        ("http://127.0.0.1:6379/", "127.0.0.1 is a loopback address"),  # Redis
        ("http://127.0.0.1:5432/", "127.0.0.1 is a loopback address"),  # PostgreSQL
        ("http://127.0.0.1:8000/admin/", "127.0.0.1 is a loopback address"),  # the app's own admin
        ("http://localhost:8000/admin/", "localhost is this site itself"),
        ("http://[::1]:8000/", "::1 is a loopback address"),
        ("http://2130706433/", "resolves to 127.0.0.1, a loopback address"),
        ("http://0x7f.1/", "resolves to 127.0.0.1, a loopback address"),
        ("http://0.0.0.0:8000/", "an unspecified address"),
        ("http://[::]/", "an unspecified address"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        (
            "http://metadata.google.internal/computeMetadata/v1/",
            "resolves to 169.254.169.254, a cloud metadata address",
        ),
        ("http://[fd00:ec2::254]/latest/meta-data/", "a cloud metadata address"),
        ("http://100.100.100.200/latest/meta-data/", "a cloud metadata address"),
        ("http://168.63.129.16/", "a cloud metadata address"),
        ("http://169.254.1.1/", "a link-local address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("http://172.16.0.1/", "a private address"),
        ("http://192.168.1.10/", "a private address"),
        ("http://[fd12:3456::1]/", "a private address"),
        ("http://internal.example.com/hook", "resolves to 10.0.0.5, a private address"),
        ("http://internal.example.com/hook", "set ALERT_WEBHOOK_ALLOW_PRIVATE=1 to allow private receivers"),
        ("http://mixed.example.com/hook", "resolves to 10.0.0.5, a private address"),
        ("http://100.64.0.1/", "a shared (carrier-grade NAT) address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://[ff02::1]/", "a multicast address"),
        ("http://255.255.255.255/", "a reserved address"),
        ("http://240.0.0.1/", "a reserved address"),
        ("http://192.0.2.10/", "a reserved address"),  # documentation
        ("http://198.18.0.1/", "a reserved address"),  # benchmarking
        ("http://192.0.0.8/", "a reserved address"),  # IPv4 dummy address, "global" to Python 3.11.7
        ("http://[2001:db8::1]/", "a reserved address"),
        ("http://[::ffff:127.0.0.1]/", "a loopback address (this machine) (127.0.0.1 inside an IPv6 address)"),
        ("http://[::ffff:169.254.169.254]/", "a cloud metadata address"),
        ("http://[::ffff:10.0.0.1]/", "a private address"),
        ("http://[::127.0.0.1]/", "a loopback address"),  # IPv4-compatible
        ("http://[2002:7f00:1::]/", "a loopback address"),  # 6to4 of 127.0.0.1
        ("http://[2002:a9fe:a9fe::]/", "a cloud metadata address"),  # 6to4 of 169.254.169.254
        ("http://[64:ff9b::7f00:1]/", "a loopback address"),  # NAT64 of 127.0.0.1
        ("http://[64:ff9b::a9fe:a9fe]/", "a cloud metadata address"),
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "a Teredo tunnel address"),
        ("https://user:pass@hooks.example.com/x", "may not carry a user name or password"),
        ("https://token@hooks.example.com/x", "may not carry a user name or password"),
        ("ftp://hooks.example.com/x", "must be http or https, not ftp"),
        ("file:///etc/passwd", "must be http or https, not file"),
        ("gopher://127.0.0.1:6379/_INFO", "must be http or https"),
        ("http:///nohost", "has no host"),
        ("http://hooks.example.com:0/", "is not a port"),
        ("http://hooks.example.com:99999/", "is not a port"),
        ("http://no-such-host.invalid/", "does not resolve"),
        ("http://testserver/admin/", "testserver is this site itself"),
        ("https://pairs.example.com/admin/", "pairs.example.com is this site itself"),
        ("https://api.pairs.example.com/", "api.pairs.example.com is this site itself"),
    ],
)
def test_the_policy_refuses_with_a_message_naming_the_problem(url, problem):
    with pytest.raises(EgressRefused) as refused:
        check_url(url, own_hosts=["localhost", "testserver", "pairs.example.com", ".pairs.example.com"], resolver=DNS)
    assert problem in str(refused.value)


@pytest.mark.parametrize(
    "url,host,port,addresses",
    [
        (
            "https://hooks.example.com/services/T0/B0/x",
            "hooks.example.com",
            443,
            ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"),
        ),
        (
            "http://hooks.example.com:8080/x?token=1",
            "hooks.example.com",
            8080,
            ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"),
        ),
        ("https://93.184.216.34/x", "93.184.216.34", 443, ("93.184.216.34",)),
        (
            "https://[2606:2800:220:1:248:1893:25c8:1946]/x",
            "2606:2800:220:1:248:1893:25c8:1946",
            443,
            ("2606:2800:220:1:248:1893:25c8:1946",),
        ),
        ("http://[::ffff:93.184.216.34]/", "::ffff:93.184.216.34", 80, ("::ffff:5db8:d822",)),
    ],
)
def test_public_receivers_pass_with_every_address_checked(url, host, port, addresses):
    target = check_url(url, resolver=DNS)
    assert (target.host, target.port, target.addresses) == (host, port, addresses)


def test_a_target_connects_to_the_checked_address_and_keeps_the_name_for_host_and_tls():
    target = check_url("https://Hooks.Example.com:8443/services/T0/B0/x?y=1", resolver=DNS)
    assert target.pinned_url == "https://93.184.216.34:8443/services/T0/B0/x?y=1"
    assert (target.netloc, target.sni_hostname) == ("hooks.example.com:8443", "hooks.example.com")
    v6 = check_url("https://[2606:2800:220:1:248:1893:25c8:1946]/x", resolver=DNS)
    assert v6.pinned_url == "https://[2606:2800:220:1:248:1893:25c8:1946]/x" and v6.sni_hostname is None


def test_allow_private_lets_private_ranges_through_and_nothing_else():
    assert check_url("http://internal.example.com/hook", allow_private=True, resolver=DNS).address == "10.0.0.5"
    assert check_url("http://[fd12:3456::1]/", allow_private=True, resolver=DNS).address == "fd12:3456::1"
    for url in (
        "http://127.0.0.1:6379/",
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[fe80::1]/",
    ):
        with pytest.raises(EgressRefused):
            check_url(url, allow_private=True, resolver=DNS)


def test_the_test_only_loopback_switch_lets_loopback_through_and_nothing_else():
    assert check_url("http://127.0.0.1:9000/", allow_loopback=True, resolver=DNS).address == "127.0.0.1"
    for url in ("http://10.0.0.1/", "http://169.254.169.254/", "http://0.0.0.0/"):
        with pytest.raises(EgressRefused):
            check_url(url, allow_loopback=True, resolver=DNS)


def test_a_host_that_does_not_resolve_is_told_apart():
    with pytest.raises(HostUnresolved):
        check_url("http://no-such-host.invalid/", resolver=DNS)
    with pytest.raises(HostUnresolved):
        check_url("http://empty.example.com/", resolver=lambda host, port: [])


def test_a_wildcard_allowed_hosts_names_no_host():
    assert check_url("https://hooks.example.com/x", own_hosts=["*"], resolver=DNS).host == "hooks.example.com"


@pytest.mark.parametrize(
    "address,problem",
    [
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("127.255.255.254", "a loopback address (this machine)"),
        ("10.0.0.1", "a private address"),
        ("fe80::1%eth0", "a link-local address"),
        ("192.0.0.8", "a reserved address"),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_address_problem(address, problem):
    assert address_problem(ipaddress.ip_address(address)) == problem
