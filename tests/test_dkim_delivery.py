"""DKIM end to end: mail of a managed domain sent through the project's Postfix is signed, and an
independent verifier (dkimpy) reading the key from dnsmasq accepts it; a rotation switches
signing only once DNS shows the new key."""

from __future__ import annotations

import re
from typing import Any

import dns.resolver
import pytest

from compose import sending
from domains import dkim, services
from domains.models import DkimKey, Domain
from mailcore import dkimkeys, senderauth
from tests.test_sending import BOB, send_now, write
from tests.test_sending import alice_account as alice_account  # fixtures, by name
from tests.test_sending import stack as stack

pytest.register_assert_rewrite("tests.dnszones")
from tests.dnszones import DnsServer, DnsServerFactory, Zones  # noqa: E402 -- after the rewrite

pytest_plugins = ["tests.dnszones"]
pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]


class Dns:
    """courrier.test's zone on a private dnsmasq: what its owner has published so far."""

    def __init__(self, server: DnsServer) -> None:
        self.server = server

    def publish(self, key: DkimKey) -> None:
        name, value, _strings, _snippet = dkim.record(key)
        zones = self.server.zones.without(name.rstrip("."))
        zones.txt(name.rstrip("."), value)
        self.server.restart(zones)

    def txt(self, name: bytes) -> bytes | None:
        """dkimpy's DNS: asks this dnsmasq, nothing of Courrier's."""
        try:
            answer = self.server.resolver().resolve(name.decode().rstrip("."), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(answer[0].strings)


@pytest.fixture
def zone(dns_servers: DnsServerFactory, settings: Any) -> Dns:
    zones = Zones()
    zones.domain("courrier.test")
    server = dns_servers(zones)
    host, port = server.nameserver
    settings.DNS_RESOLVER = f"{host}:{port}"
    return Dns(server)


def delivered(mailstack: Any, message_id: str) -> bytes:
    return mailstack.wait_for_message(BOB, f"<{message_id}>", delete=True)


def selectors(raw: bytes) -> list[str]:
    unfolded = raw.replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ").decode("ascii", "replace")
    return re.findall(r"(?im)^DKIM-Signature:.*?\bs=([^;\s]+)", unfolded)


def test_signed_mail_verifies_from_dns_and_rotation_waits_for_dns(
    alice: Any, alice_account: Any, stack: Any, zone: Dns
) -> None:
    domain = Domain.objects.create(name="courrier.test")
    first = dkim.create_key(domain, selector="jan")
    services.run_dns_check(domain)
    assert DkimKey.objects.get(pk=first.pk).state == DkimKey.State.CREATED  # not in DNS yet
    zone.publish(first)
    services.run_dns_check(domain)
    dkim.activate(DkimKey.objects.get(pk=first.pk))

    draft = write(alice, alice_account, subject="Signé par jan")
    assert send_now(draft) == "done"
    raw = delivered(stack, draft.message_id)
    assert selectors(raw) == ["jan"]
    assert dkimkeys.verify(raw, zone.txt) == [True]  # through Postfix, key read from dnsmasq

    # Rotation: the new key is made; until DNS shows it, "jan" keeps signing.
    second = dkim.rotate(DkimKey.objects.get(pk=first.pk))
    services.run_dns_check(domain)
    draft = write(alice, alice_account, subject="Toujours jan")
    assert send_now(draft) == "done"
    assert selectors(delivered(stack, draft.message_id)) == ["jan"]

    zone.publish(second)  # the owner publishes the new record beside the old one
    services.run_dns_check(domain)
    assert DkimKey.objects.get(pk=second.pk).state == DkimKey.State.ACTIVE
    assert DkimKey.objects.get(pk=first.pk).state == DkimKey.State.RETIRED

    draft = write(alice, alice_account, subject="Signé par la nouvelle clé")
    assert send_now(draft) == "done"
    raw = delivered(stack, draft.message_id)
    assert selectors(raw) == [second.selector]
    assert dkimkeys.verify(raw, zone.txt) == [True]
    tampered = raw.replace(b"Salut", b"Adieu")
    assert dkimkeys.verify(tampered, zone.txt) == [False]
    assert sending.due_ids() == []


def test_incoming_verification_passes_mail_signed_through_postfix_and_fails_a_tampered_copy(
    alice: Any, alice_account: Any, stack: Any, zone: Dns
) -> None:
    """Issue 8's check from the receiving side: the spam filter's own DKIM verification
    (mailcore.senderauth, the key read from dnsmasq) on a message that went through Postfix."""
    domain = Domain.objects.create(name="courrier.test")
    key = dkim.create_key(domain, selector="recv")
    zone.publish(key)
    services.run_dns_check(domain)
    dkim.activate(DkimKey.objects.get(pk=key.pk))
    draft = write(alice, alice_account, subject="Vérifié à l'arrivée")
    assert send_now(draft) == "done"
    raw = delivered(stack, draft.message_id)

    auth = senderauth.authenticate(raw, resolver=zone.server.resolver())
    assert (auth.dkim.result, auth.dkim.source) == ("pass", senderauth.SOURCE_VERIFIED)
    assert "courrier.test" in auth.dkim.domains

    tampered = senderauth.authenticate(
        raw.replace(b"Salut", b"Adieu"), resolver=zone.server.resolver()
    )
    assert tampered.dkim.result == "fail"
