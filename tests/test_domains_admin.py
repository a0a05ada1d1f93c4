"""Managed domains in the admin: who sees what, the DKIM key actions, the DNS report, the audit log.

The cast: root (superuser), dora (staff, administers ecole.test), sam (staff, administers no
domain). mairie.test is a domain dora does not administer. DNS is real: a private dnsmasq
(tests.dnszones) serves what the domains' owners have published so far, and Courrier asks it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from django.test import Client

from accounts.models import User
from domains import dkim, services, tasks
from domains.models import AuditEntry, DkimKey, DnsCheckResult, Domain
from mailcore import autoconfig
from tests.conftest import PASSWORD, add_authenticator, make_user, sign_in, totp_code

# The DNS servers' plugin asserts in its own code: rewritten, as in tests/test_dnscheck.py.
pytest.register_assert_rewrite("tests.dnszones")
from tests.dnszones import DnsServer, DnsServerFactory, Zones  # noqa: E402 -- after the rewrite

pytest_plugins = ["tests.dnszones"]
pytestmark = pytest.mark.django_db


class PublishedDns:
    """What the domains' owners publish: a private dnsmasq (tests.dnszones), Courrier's resolver."""

    def __init__(self, server: DnsServer) -> None:
        self.server = server

    def publish(self, key: DkimKey, value: str = "") -> None:
        name, record, _strings, _snippet = dkim.record(key)
        zones = self.server.zones.without(name.rstrip("."))
        zones.txt(name.rstrip("."), value or record)
        self.server.restart(zones)


@pytest.fixture(autouse=True)
def _no_internet_dns(settings: Any) -> None:
    """A test that checks DNS without the `dns` fixture asks a port where nobody answers."""
    settings.DNS_RESOLVER = "127.0.0.1:9"


@pytest.fixture
def dns(dns_servers: DnsServerFactory, settings: Any) -> PublishedDns:
    zones = Zones()
    for name in ("ecole.test", "mairie.test", "old.test", *(f"d{n}.test" for n in range(7))):
        zones.domain(name)
    server = dns_servers(zones)
    host, port = server.nameserver
    settings.DNS_RESOLVER = f"{host}:{port}"
    return PublishedDns(server)


def published_and_active(dns: PublishedDns, key: DkimKey) -> None:
    dns.publish(key)
    services.run_dns_check(key.domain)
    dkim.activate(key)


def signed_in(user: User) -> Client:
    """A browser of ``user`` through the sign-in page and the second-factor step."""
    device = add_authenticator(user)
    client = Client()
    sign_in(client, user.email)
    verified = client.post("/accounts/security/verify/", {"code": totp_code(device)})
    assert verified.status_code == 302
    return client


@pytest.fixture
def ecole() -> Domain:
    return Domain.objects.create(name="ecole.test", incoming_host="imap.ecole.test")


@pytest.fixture
def mairie() -> Domain:
    return Domain.objects.create(name="mairie.test")


@pytest.fixture
def dora(ecole: Domain) -> User:
    user = make_user("dora@ecole.test", is_staff=True)
    ecole.admins.add(user)
    return user


@pytest.fixture
def root() -> User:
    return make_user("root@example.org", is_superuser=True)


@pytest.fixture
def dora_client(dora: User) -> Client:
    return signed_in(dora)


@pytest.fixture
def root_client(root: User) -> Client:
    return signed_in(root)


def change_url(domain: Domain) -> str:
    return f"/admin/domains/domain/{domain.pk}/change/"


def report_url(domain: Domain) -> str:
    return f"/admin/domains/domain/{domain.pk}/dns/"


def key_url(key: DkimKey, page: str = "change") -> str:
    return f"/admin/domains/dkimkey/{key.pk}/{page}/"


def domain_form(name: str, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": name,
        "active": "on",
        "incoming_protocol": "imap",
        "incoming_host": "",
        "incoming_port": "993",
        "incoming_security": "tls",
        "smtp_host": "",
        "smtp_port": "465",
        "smtp_security": "tls",
        "max_attachments_mb": "",
        "dkim_keys-TOTAL_FORMS": "0",
        "dkim_keys-INITIAL_FORMS": "0",
        "dkim_keys-MIN_NUM_FORMS": "0",
        "dkim_keys-MAX_NUM_FORMS": "0",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def action(client: Client, model: str, name: str, *objects: Domain | DkimKey):
    return client.post(
        f"/admin/domains/{model}/",
        {"action": name, "_selected_action": [str(obj.pk) for obj in objects]},
        follow=True,
    )


def pem_of(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# Who gets in -------------------------------------------------------------------------------------


def test_staff_without_a_verified_second_factor_reach_no_domain_page(
    client: Client, dora: User, ecole: Domain
) -> None:
    key = dkim.create_key(ecole)
    add_authenticator(dora)
    sign_in(client, dora.email)  # password only: the code step is still owed
    for path in (
        "/admin/domains/domain/",
        change_url(ecole),
        report_url(ecole),
        key_url(key),
        key_url(key, "export"),
        "/admin/domains/auditentry/",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/security/verify/")
    response = client.post(key_url(key, "export"), {"password": PASSWORD})
    assert response.status_code == 302
    assert b"PRIVATE KEY" not in response.content


def test_staff_without_an_authenticator_must_enrol_first(
    client: Client, dora: User, ecole: Domain
) -> None:
    sign_in(client, dora.email)
    response = client.get(report_url(ecole))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/security/authenticator/add/")


def test_a_domain_admin_sees_only_their_domains(
    dora_client: Client, ecole: Domain, mairie: Domain
) -> None:
    page = dora_client.get("/admin/domains/domain/")
    assert page.status_code == 200
    assert "ecole.test" in page.text
    assert "mairie.test" not in page.text
    index = dora_client.get("/admin/").text
    assert "/admin/domains/domain/" in index
    assert "/admin/accounts/user/" not in index  # nothing else of the admin


def test_a_domain_admin_gets_404_on_every_page_of_another_domain(
    dora_client: Client, mairie: Domain
) -> None:
    key = dkim.create_key(mairie)
    for path in (
        change_url(mairie),
        f"/admin/domains/domain/{mairie.pk}/history/",
        report_url(mairie),
        f"/admin/domains/domain/{mairie.pk}/keys/generate/",
        f"/admin/domains/domain/{mairie.pk}/keys/import/",
        key_url(key),
        key_url(key, "zone"),
        key_url(key, "export"),
    ):
        assert dora_client.get(path).status_code == 404, path
    assert dora_client.post(f"{report_url(mairie)}check/").status_code == 404
    exported = dora_client.post(key_url(key, "export"), {"password": PASSWORD})
    assert exported.status_code == 404
    assert dora_client.post(change_url(mairie), domain_form("mairie.test")).status_code == 404
    assert not DnsCheckResult.objects.filter(domain=mairie).exists()
    assert not AuditEntry.objects.exists()


def test_a_domain_admins_actions_skip_other_domains_keys(
    dora_client: Client, ecole: Domain, mairie: Domain, dns: PublishedDns
) -> None:
    theirs = dkim.create_key(mairie)
    dns.publish(theirs)
    services.run_dns_check(mairie)
    action(dora_client, "dkimkey", "activate", theirs)
    action(dora_client, "domain", "check_dns", mairie)
    assert DkimKey.objects.get(pk=theirs.pk).state == DkimKey.State.PUBLISHED
    assert DnsCheckResult.objects.filter(domain=mairie).values("run").distinct().count() == 1


def test_a_domain_admin_sees_only_their_keys_results_and_log(
    dora_client: Client, root: User, ecole: Domain, mairie: Domain, dns: PublishedDns
) -> None:
    mine, theirs = dkim.create_key(ecole), dkim.create_key(mairie, selector="theirs")
    actor = services.Actor(root, services.ROLE_SUPERUSER, "192.0.2.1")
    services.run_dns_check(ecole, actor=actor)
    services.run_dns_check(mairie, actor=actor)
    keys = dora_client.get("/admin/domains/dkimkey/").text
    assert mine.selector in keys
    assert "theirs._domainkey" not in keys
    assert "mairie.test" not in keys  # not even in the domain filter
    results = dora_client.get("/admin/domains/dnscheckresult/").text
    assert "ecole.test" in results
    assert "mairie.test" not in results
    log = dora_client.get("/admin/domains/auditentry/").text
    assert "ecole.test" in log
    assert "mairie.test" not in log
    assert theirs.pk


def test_staff_who_administer_no_domain_see_none(client: Client, ecole: Domain) -> None:
    sam = signed_in(make_user("sam@example.org", is_staff=True))
    assert sam.get("/admin/domains/domain/").status_code == 403
    assert sam.get(change_url(ecole)).status_code == 404
    assert sam.get(report_url(ecole)).status_code == 404
    assert "/admin/domains/" not in sam.get("/admin/").text


def test_the_superuser_sees_every_domain(
    root_client: Client, ecole: Domain, mairie: Domain
) -> None:
    page = root_client.get("/admin/domains/domain/")
    assert "ecole.test" in page.text
    assert "mairie.test" in page.text
    assert root_client.get(change_url(mairie)).status_code == 200
    assert root_client.get(report_url(mairie)).status_code == 200


# The domain form ---------------------------------------------------------------------------------


def test_a_domain_typed_in_unicode_is_stored_in_idna_and_shown_in_unicode(
    root_client: Client, root: User
) -> None:
    response = root_client.post(
        "/admin/domains/domain/add/",
        domain_form("Café.Example", incoming_host="IMAP.Café.Example"),
        REMOTE_ADDR="198.51.100.7",
    )
    assert response.status_code == 302
    domain = Domain.objects.get()
    assert domain.name == "xn--caf-dma.example"
    assert domain.incoming_host == "imap.xn--caf-dma.example"
    assert "café.example (xn--caf-dma.example)" in root_client.get("/admin/domains/domain/").text
    assert "xn--caf-dma.example" in root_client.get("/admin/domains/domain/?q=café.example").text
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.target, entry.user, entry.role) == (
        "domain.add",
        "xn--caf-dma.example",
        root,
        "superuser",
    )
    assert entry.client_address == "198.51.100.7"
    assert entry.after["name"] == "xn--caf-dma.example"


@pytest.mark.parametrize(
    "name",
    [
        "-ecole.test",
        "ecole-.test",
        "a..test",
        "exa_mple.org",
        "localhost",
        "192.0.2.1",
        "x" * 64 + ".org",
    ],
)
def test_invalid_domain_names_are_refused(root_client: Client, name: str) -> None:
    page = root_client.post("/admin/domains/domain/add/", domain_form(name))
    assert page.status_code == 200
    assert "errornote" in page.text
    assert not Domain.objects.exists()


def test_the_same_domain_twice_is_refused_whatever_its_spelling(
    root_client: Client,
) -> None:
    Domain.objects.create(name="xn--caf-dma.example")
    page = root_client.post("/admin/domains/domain/add/", domain_form("CAFÉ.example."))
    assert page.status_code == 200
    assert Domain.objects.count() == 1


def test_a_domain_admin_changes_settings_but_not_the_name_nor_the_admins(
    dora_client: Client, dora: User, ecole: Domain
) -> None:
    intruder = make_user("intruder@example.org", is_staff=True)
    response = dora_client.post(
        change_url(ecole),
        domain_form(
            "evil.test",
            smtp_host="smtp.ecole.test",
            incoming_host="imap.ecole.test",
            admins=[str(intruder.pk)],
            mfa_required="on",
        ),
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 302
    ecole.refresh_from_db()
    assert ecole.name == "ecole.test"
    assert ecole.smtp_host == "smtp.ecole.test"
    assert list(ecole.admins.all()) == [dora]
    entry = AuditEntry.objects.get()
    assert entry.action == "domain.change"
    assert entry.role == "domain admin"
    assert entry.client_address == "203.0.113.9"
    assert entry.before == {"smtp_host": "", "mfa_required": False}
    assert entry.after == {"smtp_host": "smtp.ecole.test", "mfa_required": True}


def test_the_superuser_names_domain_admins_and_it_is_audited(
    root_client: Client, dora: User, ecole: Domain
) -> None:
    marc = make_user("marc@example.org", is_staff=True)
    response = root_client.post(
        change_url(ecole),
        domain_form("ecole.test", incoming_host="imap.ecole.test", admins=[dora.pk, marc.pk]),
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.get()
    assert entry.before == {"admins": ["dora@ecole.test"]}
    assert entry.after == {"admins": ["dora@ecole.test", "marc@example.org"]}


def test_deleting_a_domain_is_audited_and_left_to_superusers(
    root_client: Client, dora_client: Client, ecole: Domain
) -> None:
    dkim.create_key(ecole, selector="s1")
    assert (
        dora_client.post(f"/admin/domains/domain/{ecole.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    response = root_client.post(f"/admin/domains/domain/{ecole.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Domain.objects.exists()
    entry = AuditEntry.objects.get()
    assert entry.action == "domain.delete"
    assert entry.before["dkim_keys"] == ["s1"]
    assert "PRIVATE" not in str(entry.before)


# DKIM keys ---------------------------------------------------------------------------------------


def test_generating_a_key_shows_its_record_ready_to_paste_and_never_its_private_half(
    dora_client: Client, ecole: Domain
) -> None:
    page = dora_client.get(f"/admin/domains/domain/{ecole.pk}/keys/generate/")
    assert page.status_code == 200
    response = dora_client.post(
        f"/admin/domains/domain/{ecole.pk}/keys/generate/", {"kind": "rsa-2048", "selector": "s1"}
    )
    key = DkimKey.objects.get(domain=ecole)
    assert response.status_code == 302
    assert response["Location"] == key_url(key)
    assert (key.selector, key.algorithm, key.bits) == ("s1", "rsa", 2048)
    page = dora_client.get(key_url(key)).text
    assert "s1._domainkey.ecole.test." in page
    strings = re.findall(r"&quot;(v=DKIM1[^&]*|[A-Za-z0-9+/=]+)&quot;", page)
    assert strings[0].startswith("v=DKIM1; k=rsa; p=")
    assert "".join(strings) == dkim.record(key)[1]
    assert all(len(part) <= 255 for part in strings)
    assert "PRIVATE KEY" not in page
    assert key.private_key.splitlines()[1] not in page
    entry = AuditEntry.objects.get()
    assert entry.action == "dkim.generate"
    assert entry.target == "ecole.test/s1"
    assert entry.after == {"selector": "s1", "algorithm": "rsa", "bits": 2048, "state": "created"}


def test_the_bind_snippet_downloads(dora_client: Client, ecole: Domain) -> None:
    key = dkim.create_key(ecole, selector="s1")
    response = dora_client.get(key_url(key, "zone"))
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        'attachment; filename="s1._domainkey.ecole.test.zone"'
    )
    assert response.content.decode() == dkim.record(key)[3]
    assert response.content.startswith(b"s1._domainkey.ecole.test. 3600 IN TXT (")


def test_an_ed25519_key_comes_only_in_addition_to_an_rsa_key(
    dora_client: Client, ecole: Domain
) -> None:
    url = f"/admin/domains/domain/{ecole.pk}/keys/generate/"
    page = dora_client.post(url, {"kind": "ed25519"})
    assert page.status_code == 200
    assert "Add an RSA key first" in page.text
    dora_client.post(url, {"kind": "rsa-2048"})
    assert dora_client.post(url, {"kind": "ed25519"}).status_code == 302
    assert sorted(ecole.dkim_keys.values_list("algorithm", flat=True)) == ["ed25519", "rsa"]


def test_a_1024_bit_key_is_neither_offered_nor_imported(dora_client: Client, ecole: Domain) -> None:
    url = f"/admin/domains/domain/{ecole.pk}/keys/"
    # The point of the test: a breakable key.
    weak = pem_of(rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505
    page = dora_client.post(f"{url}import/", {"pem": weak})
    assert page.status_code == 200
    assert "This RSA key has 1024 bits" in page.text
    assert "Generate a new 2048-bit key instead" in page.text
    assert "PRIVATE KEY-----\n" not in page.text  # the PEM is not sent back
    assert weak.splitlines()[1] not in page.text
    assert dora_client.post(f"{url}generate/", {"kind": "rsa-1024"}).status_code == 200
    assert not DkimKey.objects.exists()


def test_importing_a_key_stores_it_and_never_echoes_the_pem(
    dora_client: Client, ecole: Domain
) -> None:
    url = f"/admin/domains/domain/{ecole.pk}/keys/import/"
    pem = pem_of(ed25519.Ed25519PrivateKey.generate())
    dkim.create_key(ecole, selector="taken")
    page = dora_client.post(url, {"pem": pem, "selector": "taken"})
    assert "already has a key with this selector" in page.text
    assert pem.splitlines()[1] not in page.text
    assert "no-store" in page["Cache-Control"]
    assert "not an unencrypted private key" in dora_client.post(url, {"pem": "hello"}).text

    response = dora_client.post(url, {"pem": pem, "selector": "imported"})
    assert response.status_code == 302
    key = DkimKey.objects.get(selector="imported")
    assert key.algorithm == "ed25519"
    assert key.private_key.strip() == pem.strip()
    entry = AuditEntry.objects.get(action="dkim.import")
    assert "PRIVATE" not in str(entry.after)


def test_the_generate_action_on_the_domain_list(dora_client: Client, ecole: Domain) -> None:
    page = action(dora_client, "domain", "generate_rsa_key", ecole)
    key = DkimKey.objects.get(domain=ecole)
    assert f"Key {key.selector} created" in page.text
    assert (key.algorithm, key.bits, key.state) == ("rsa", 2048, "created")


def test_a_key_is_published_by_a_check_then_activated_by_the_admin(
    dora_client: Client, ecole: Domain, dns: PublishedDns
) -> None:
    key = dkim.create_key(ecole, selector="s1")
    page = action(dora_client, "dkimkey", "activate", key)
    assert "A key signs only once DNS shows it" in page.text
    assert DkimKey.objects.get(pk=key.pk).state == DkimKey.State.CREATED

    dns.publish(key)
    checked = dora_client.post(f"{report_url(ecole)}check/", follow=True)
    assert "s1: published" in checked.text
    page = action(dora_client, "dkimkey", "activate", key)
    assert "Now signing: s1" in page.text
    assert DkimKey.objects.get(pk=key.pk).state == DkimKey.State.ACTIVE
    actions = list(AuditEntry.objects.order_by("created_at").values_list("action", "role"))
    assert actions == [
        ("dns.check", "domain admin"),
        ("dkim.advance", "domain admin"),
        ("dkim.activate", "domain admin"),
    ]
    entry = AuditEntry.objects.get(action="dkim.activate")
    assert (entry.before, entry.after) == ({"state": "published"}, {"state": "active"})


def test_rotation_through_the_admin_switches_once_dns_shows_the_new_key(
    dora_client: Client, ecole: Domain, dns: PublishedDns
) -> None:
    old = dkim.create_key(ecole, selector="old")
    published_and_active(dns, old)

    action(dora_client, "dkimkey", "rotate", old)
    new = DkimKey.objects.get(replaces=old)
    action(dora_client, "domain", "check_dns", ecole)
    assert DkimKey.objects.get(pk=new.pk).state == DkimKey.State.CREATED
    assert DkimKey.objects.get(pk=old.pk).state == DkimKey.State.ACTIVE

    dns.publish(new)
    tasks.check_domain.delay(ecole.pk)  # the scheduler's pass
    assert DkimKey.objects.get(pk=new.pk).state == DkimKey.State.ACTIVE
    assert DkimKey.objects.get(pk=old.pk).state == DkimKey.State.RETIRED
    advanced = AuditEntry.objects.filter(action="dkim.advance").latest("created_at")
    assert advanced.role == "system"
    assert advanced.after == {
        "changes": [f"{new.selector}: published", f"{new.selector}: active, old: retired"]
    }
    rotated = AuditEntry.objects.get(action="dkim.rotate")
    assert rotated.after["successor"]["selector"] == new.selector


def test_retiring_stops_signing_and_only_active_keys_retire(
    dora_client: Client, ecole: Domain, dns: PublishedDns
) -> None:
    active, fresh = dkim.create_key(ecole, selector="a"), dkim.create_key(ecole, selector="b")
    published_and_active(dns, active)
    page = action(dora_client, "dkimkey", "retire", active, fresh)
    assert "Retired: a." in page.text
    assert "Not retired: b." in page.text
    assert DkimKey.objects.get(pk=active.pk).state == DkimKey.State.RETIRED
    assert AuditEntry.objects.get(action="dkim.retire").after["state"] == "retired"


# Export ------------------------------------------------------------------------------------------


def test_export_asks_for_the_password_and_is_audited(
    dora_client: Client, dora: User, ecole: Domain
) -> None:
    key = dkim.create_key(ecole, selector="s1")
    url = key_url(key, "export")
    form = dora_client.get(url)
    assert form.status_code == 200
    assert 'type="password"' in form.text
    assert "PRIVATE KEY" not in form.text

    wrong = dora_client.post(url, {"password": "not it"}, REMOTE_ADDR="198.51.100.4")
    assert wrong.status_code == 200
    assert "This is not your password" in wrong.text
    assert "PRIVATE KEY" not in wrong.text
    assert AuditEntry.objects.get().action == "dkim.export-refused"

    response = dora_client.post(url, {"password": PASSWORD}, REMOTE_ADDR="198.51.100.4")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="s1._domainkey.ecole.test.pem"'
    assert "no-store" in response["Cache-Control"]
    assert response.content.decode() == key.private_key
    entry = AuditEntry.objects.get(action="dkim.export")
    assert (entry.user, entry.role, entry.client_address, entry.target) == (
        dora,
        "domain admin",
        "198.51.100.4",
        "ecole.test/s1",
    )
    assert "PRIVATE" not in str(entry.after)


def test_export_stops_after_too_many_wrong_passwords(dora_client: Client, ecole: Domain) -> None:
    key = dkim.create_key(ecole)
    url = key_url(key, "export")
    for _ in range(services.EXPORT_MAX_FAILURES):
        dora_client.post(url, {"password": "guess"})
    response = dora_client.post(url, {"password": PASSWORD})
    assert response.status_code == 429
    assert "PRIVATE KEY" not in response.text


def test_export_needs_post(dora_client: Client, ecole: Domain) -> None:
    key = dkim.create_key(ecole)
    assert dora_client.put(key_url(key, "export")).status_code == 405


# The DNS report ----------------------------------------------------------------------------------


def test_the_dns_report_shows_each_check_with_the_record_to_publish(
    dora_client: Client, ecole: Domain, dns: PublishedDns
) -> None:
    published, pending = dkim.create_key(ecole, selector="a"), dkim.create_key(ecole, selector="b")
    published_and_active(dns, published)
    dns.publish(published, value="v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEF")  # a stale key
    assert dora_client.get(report_url(ecole)).status_code == 200

    dora_client.post(f"{report_url(ecole)}check/")
    page = dora_client.get(report_url(ecole)).text
    stale = page.split('id="check-dkima"')[1].split("</section>")[0]
    assert 'courrier-status--error">error' in stale
    assert "DNS has a record here, but not the one expected." in stale
    assert "<pre>v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEF</pre>" in stale  # found
    assert f"<pre>{dkim.record(published)[1]}</pre>" in stale  # expected
    waiting = page.split('id="check-dkimb"')[1].split("</section>")[0]
    assert 'courrier-status--pending">pending' in waiting
    assert "There is no record at b._domainkey.ecole.test." in waiting
    assert (
        '<pre class="courrier-copy courrier-fix">b._domainkey.ecole.test. 3600 IN TXT (' in waiting
    )
    assert re.search(r'Run 2, checked\s*<time datetime="\d{4}-\d\d-\d\dT', page)
    assert 'id="check-mx"' in page  # mailcore.dnscheck's other checks
    assert page.index('id="check-dkima"') < page.index('id="check-dkimb"')  # errors first
    result = DnsCheckResult.objects.get(run=2, kind="dkim:a")
    assert (result.status, result.problem) == ("error", "mismatch")
    assert pending.state == DkimKey.State.CREATED


def test_problems_and_notes_read_as_sentences_with_their_parameters(ecole: Domain) -> None:
    result = DnsCheckResult(
        domain=ecole,
        kind="spf",
        problem="too-many-lookups",
        params={"lookups": 11, "limit": 10, "notes": ["flattened", "softfail-all", "new-code"]},
    )
    explained = services.explain(result)
    assert explained.problem == (
        "SPF needs 11 DNS lookups; receivers stop at 10 and treat the record as broken."
    )
    assert explained.notes[0].startswith("The proposed record lists today's addresses")
    assert explained.notes[2] == "new-code"  # a code not known here is shown as it is
    dmarc = DnsCheckResult(domain=ecole, kind="dmarc", problem="weak-policy", params={})
    assert "policy is “none”" in services.explain(dmarc).problem
    syntax = DnsCheckResult(domain=ecole, kind="dmarc", problem="syntax", params={"tag": "p"})
    assert services.explain(syntax).problem == "The record is not valid: “p=?” is wrong."


def test_the_report_keeps_the_last_runs_and_shows_older_ones(
    dora_client: Client, ecole: Domain, dns: PublishedDns
) -> None:
    dkim.create_key(ecole, selector="s1")
    for _ in range(services.KEEP_RUNS + 2):
        services.run_dns_check(ecole)
    runs = set(DnsCheckResult.objects.values_list("run", flat=True))
    assert runs == set(range(3, services.KEEP_RUNS + 3))
    page = dora_client.get(report_url(ecole), {"run": 5})
    assert "This is an older run" in page.text
    assert dora_client.get(report_url(ecole), {"run": 1}).status_code == 400
    assert dora_client.get(report_url(ecole), {"run": "x"}).status_code == 400


def test_check_now_is_post_only(dora_client: Client, ecole: Domain) -> None:
    assert dora_client.get(f"{report_url(ecole)}check/").status_code == 405


def test_the_domain_list_shows_dns_health_in_a_fixed_number_of_queries(
    root_client: Client, django_assert_max_num_queries: Any, dns: PublishedDns
) -> None:
    def add_domains(start: int, count: int) -> None:
        for number in range(start, start + count):
            domain = Domain.objects.create(name=f"d{number}.test")
            dkim.create_key(domain, selector="s")
            services.run_dns_check(domain)

    add_domains(0, 2)
    with django_assert_max_num_queries(12) as few:
        page = root_client.get("/admin/domains/domain/")
    add_domains(2, 5)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = root_client.get("/admin/domains/domain/")
    # Nothing published: no MX, SPF or DMARC.
    assert page.text.count('courrier-status--error">error') == 7
    assert page.text.count(f'href="/admin/domains/domain/{Domain.objects.first().pk}/dns/"') == 1


def test_the_scheduler_checks_every_active_domain(
    ecole: Domain, mairie: Domain, dns: PublishedDns
) -> None:
    Domain.objects.create(name="old.test", active=False)
    tasks.check_all_domains.delay()
    assert set(DnsCheckResult.objects.values_list("domain__name", flat=True)) == {
        "ecole.test",
        "mairie.test",
    }
    tasks.check_domain.delay(999_999)  # deleted meanwhile: nothing to do


# The audit log -----------------------------------------------------------------------------------


def test_the_audit_log_is_searchable_filterable_and_read_only(
    root_client: Client, root: User, ecole: Domain
) -> None:
    actor = services.Actor(root, services.ROLE_SUPERUSER, "192.0.2.44")
    key = services.generate_key(actor, ecole, algorithm="rsa", bits=2048, selector="s9")
    page = root_client.get("/admin/domains/auditentry/", {"q": "192.0.2.44"})
    assert "ecole.test/s9" in page.text
    assert "DKIM key generated" in page.text
    assert (
        "ecole.test/s9" in root_client.get("/admin/domains/auditentry/?action=dkim.generate").text
    )
    assert "ecole.test/s9" not in root_client.get("/admin/domains/auditentry/?q=nobody").text
    entry = AuditEntry.objects.get()
    detail = root_client.get(f"/admin/domains/auditentry/{entry.pk}/change/").text
    assert "&quot;selector&quot;: &quot;s9&quot;" in detail
    assert root_client.post(f"/admin/domains/auditentry/{entry.pk}/delete/").status_code == 403
    assert root_client.get("/admin/domains/auditentry/add/").status_code == 403
    assert key.pk


# Autoconfiguration -------------------------------------------------------------------------------


def test_known_settings_propose_the_servers_of_an_active_managed_domain(ecole: Domain) -> None:
    ecole.smtp_host = "smtp.ecole.test"
    ecole.save()
    found = services.known_settings("ecole.test")
    assert found == autoconfig.Suggestion(
        autoconfig.ServerGuess("imap", "imap.ecole.test", 993, "tls", ""),
        autoconfig.ServerGuess("smtp", "smtp.ecole.test", 465, "tls", ""),
        autoconfig.Source.KNOWN,
    )
    assert services.known_settings("elsewhere.test") is None
    ecole.active = False
    ecole.save()
    assert services.known_settings("ecole.test") is None
