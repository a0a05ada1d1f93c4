"""The admin side of managed domains: who may administer what, the audit log, DKIM key actions,
DNS check runs, the operations dashboard, and the autoconfig seam.

Every change an administrator makes goes through a function here that writes its audit entry in
the same transaction. The caller (an admin page) says who acts through an `Actor`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import logging
from typing import Any

import dns.resolver
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F, IntegerField, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, TruncDate
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from compose.models import Draft
from core import services as core_services
from domains import dkim
from domains.models import AuditEntry, DkimKey, DnsCheckResult, Domain
from mailboxes.models import Folder, MailAccount, Message, MessageContent
from mailcore import autoconfig, dnscheck

logger = logging.getLogger(__name__)

KEEP_RUNS = 10  # DNS check runs kept per domain: the report's history
DASHBOARD_DAYS = 14
FAILED_SENDS_DAYS = 7
DASHBOARD_LIST_LIMIT = 20
WORKER_STALE_AFTER = dt.timedelta(minutes=5)
# Wrong passwords on the export form before it waits: a session left open is not a licence.
EXPORT_MAX_FAILURES = 5
EXPORT_FAILURE_WINDOW = dt.timedelta(minutes=15)

# Roles as the audit log records them.
ROLE_SUPERUSER = "superuser"
ROLE_DOMAIN_ADMIN = "domain admin"
ROLE_STAFF = "staff"
ROLE_SYSTEM = "system"

ACTION_LABELS = {
    "domain.add": _("domain added"),
    "domain.change": _("domain changed"),
    "domain.delete": _("domain deleted"),
    "dkim.generate": _("DKIM key generated"),
    "dkim.import": _("DKIM key imported"),
    "dkim.activate": _("DKIM key activated"),
    "dkim.rotate": _("DKIM key rotation started"),
    "dkim.retire": _("DKIM key retired"),
    "dkim.export": _("DKIM private key exported"),
    "dkim.export-refused": _("DKIM key export refused (wrong password)"),
    "dkim.advance": _("DKIM keys moved on after a DNS check"),
    "dns.check": _("DNS checked"),
}

# Who acts --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who an audit entry names: an administrator from a request, or the scheduler."""

    user: Any  # accounts.User, or None for the scheduler
    role: str
    address: str | None = None

    @property
    def email(self) -> str:
        return self.user.email if self.user is not None else ""


SYSTEM = Actor(user=None, role=ROLE_SYSTEM)


def actor_from_request(request: HttpRequest) -> Actor:
    return Actor(request.user, role_of(request.user), client_address(request))


def client_address(request: HttpRequest) -> str | None:
    address = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def role_of(user: Any) -> str:
    if user.is_superuser:
        return ROLE_SUPERUSER
    if administered_domain_ids(user):
        return ROLE_DOMAIN_ADMIN
    return ROLE_STAFF


# Who may administer what -------------------------------------------------------------------------


def administered_domain_ids(user: Any) -> frozenset[int]:
    """The domains a staff user administers (`Domain.admins`), asked once per user object.

    Kept on the user object as Django keeps its permission cache there: the admin asks for
    permissions many times while drawing one page."""
    cached = getattr(user, "_courrier_domain_ids", None)
    if cached is None:
        if user.is_authenticated and user.is_active and user.is_staff:
            cached = frozenset(Domain.objects.filter(admins=user).values_list("pk", flat=True))
        else:
            cached = frozenset()
        user._courrier_domain_ids = cached
    return cached


def is_superuser(user: Any) -> bool:
    return bool(user.is_active and user.is_superuser)


def may_administer_domains(user: Any) -> bool:
    """Superusers, and staff named administrators of at least one domain."""
    return is_superuser(user) or bool(administered_domain_ids(user))


def may_administer(user: Any, domain_id: int) -> bool:
    return is_superuser(user) or domain_id in administered_domain_ids(user)


def domains_for(user: Any) -> QuerySet[Domain]:
    if is_superuser(user):
        return Domain.objects.all()
    return Domain.objects.filter(pk__in=administered_domain_ids(user))


def keys_for(user: Any) -> QuerySet[DkimKey]:
    if is_superuser(user):
        return DkimKey.objects.all()
    return DkimKey.objects.filter(domain__in=administered_domain_ids(user))


def dns_results_for(user: Any) -> QuerySet[DnsCheckResult]:
    if is_superuser(user):
        return DnsCheckResult.objects.all()
    return DnsCheckResult.objects.filter(domain__in=administered_domain_ids(user))


def audit_entries_for(user: Any) -> QuerySet[AuditEntry]:
    """Superusers read the whole log; a domain admin the entries about their domains."""
    if is_superuser(user):
        return AuditEntry.objects.all()
    names = Domain.objects.filter(pk__in=administered_domain_ids(user)).values_list(
        "name", flat=True
    )
    about = Q(pk__in=[])
    for name in names:
        about |= Q(target=name) | Q(target__startswith=f"{name}/")
    return AuditEntry.objects.filter(about)


# The audit log -----------------------------------------------------------------------------------


def audit(
    actor: Actor,
    action: str,
    target: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        user=actor.user,
        user_email=actor.email[:320],
        role=actor.role,
        client_address=actor.address,
        action=action,
        target=target[:300],
        before=before or {},
        after=after or {},
    )


def key_target(key: DkimKey) -> str:
    """How the log names a key: its domain (for the per-domain filter), then its selector."""
    return f"{key.domain.name}/{key.selector}"


def domain_state(domain: Domain) -> dict[str, Any]:
    """A domain's settings as JSON, for before/after in the log."""
    state: dict[str, Any] = {
        field.name: field.value_from_object(domain)
        for field in Domain._meta.concrete_fields
        if field.name not in {"id", "created_at"}
    }
    if domain.pk:
        state["admins"] = sorted(domain.admins.values_list("email", flat=True))
    return state


def changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict, dict]:
    """Only the fields that differ, from each side."""
    names = [name for name in after.keys() | before.keys() if before.get(name) != after.get(name)]
    return (
        {name: before.get(name) for name in sorted(names)},
        {name: after.get(name) for name in sorted(names)},
    )


def record_domain_saved(
    actor: Actor, domain: Domain, before: dict[str, Any], *, created: bool
) -> None:
    """Called by the admin once a domain and its administrators are saved."""
    after = domain_state(domain)
    if created:
        audit(actor, "domain.add", domain.name, after=after)
        return
    old, new = changed(before, after)
    if old or new:
        audit(actor, "domain.change", domain.name, before=old, after=new)


@transaction.atomic
def delete_domain(actor: Actor, domain: Domain) -> None:
    before = domain_state(domain)
    before["dkim_keys"] = list(domain.dkim_keys.values_list("selector", flat=True))
    audit(actor, "domain.delete", domain.name, before=before)
    domain.delete()


# DKIM keys ---------------------------------------------------------------------------------------


def key_state(key: DkimKey) -> dict[str, Any]:
    """What the log keeps of a key: never its private half."""
    return {
        "selector": key.selector,
        "algorithm": key.algorithm,
        "bits": key.bits,
        "state": key.state,
    }


@transaction.atomic
def generate_key(
    actor: Actor, domain: Domain, *, algorithm: str, bits: int, selector: str = ""
) -> DkimKey:
    """A new key for the domain. Raises dkimkeys.KeyProblem."""
    key = dkim.create_key(domain, algorithm=algorithm, bits=bits, selector=selector)
    audit(actor, "dkim.generate", key_target(key), after=key_state(key))
    return key


@transaction.atomic
def import_key(actor: Actor, domain: Domain, *, pem: str, selector: str = "") -> DkimKey:
    """A key brought from elsewhere. Raises dkimkeys.KeyProblem."""
    key = dkim.create_key(domain, pem=pem, selector=selector)
    audit(actor, "dkim.import", key_target(key), after=key_state(key))
    return key


@transaction.atomic
def activate_key(actor: Actor, key: DkimKey) -> None:
    """Start signing with a published key. Raises dkim.KeyStateError."""
    before = key.state
    dkim.activate(key)
    key.refresh_from_db()
    after: dict[str, Any] = {"state": key.state}
    if key.replaces_id is not None:
        after["retired"] = key.replaces.selector if key.replaces else None
    audit(actor, "dkim.activate", key_target(key), before={"state": before}, after=after)


@transaction.atomic
def rotate_key(actor: Actor, key: DkimKey) -> DkimKey:
    """A successor for an active key; it takes over once DNS shows it. Raises KeyStateError."""
    new = dkim.rotate(key)
    audit(
        actor,
        "dkim.rotate",
        key_target(key),
        before={"state": key.state},
        after={"successor": key_state(new)},
    )
    return new


@transaction.atomic
def retire_key(actor: Actor, key: DkimKey) -> None:
    """Stop signing with an active key (its record stays for the grace period)."""
    if key.state != DkimKey.State.ACTIVE:
        raise dkim.KeyStateError("only an active key can be retired")
    dkim.retire(key)
    key.refresh_from_db()
    audit(
        actor,
        "dkim.retire",
        key_target(key),
        before={"state": DkimKey.State.ACTIVE},
        after={"state": key.state, "remove_after": key.remove_after.isoformat()},
    )


def export_key(actor: Actor, key: DkimKey) -> str:
    """The private key as PEM, for an administrator who proved their password again."""
    if not key.private_key:
        raise dkim.KeyStateError("the private key of a removed key is erased")
    audit(actor, "dkim.export", key_target(key), after={"selector": key.selector})
    return key.private_key


def refuse_export(actor: Actor, key: DkimKey) -> None:
    audit(actor, "dkim.export-refused", key_target(key))


def export_attempts_exhausted(user: Any) -> bool:
    """Whether the user typed too many wrong passwords on the export form lately."""
    since = timezone.now() - EXPORT_FAILURE_WINDOW
    failures = AuditEntry.objects.filter(
        user=user, action="dkim.export-refused", created_at__gte=since
    ).count()
    return failures >= EXPORT_MAX_FAILURES


# DNS checks --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CheckRun:
    run: int
    counts: dict[str, int]
    key_changes: list[str]


def dns_resolver() -> dns.resolver.Resolver:
    """The configured resolver (`DNS_RESOLVER`, host:port), else the system's."""
    configured = getattr(settings, "DNS_RESOLVER", "")
    if not configured:
        return dns.resolver.Resolver()
    host, _sep, port = configured.rpartition(":")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)
    return resolver


def expectations(domain: Domain) -> dnscheck.Expectations:
    """What Courrier knows the domain should publish."""
    keys = domain.dkim_keys.exclude(state=DkimKey.State.REMOVED).order_by("selector")
    outgoing = domain.smtp_host
    return dnscheck.Expectations(
        domain=domain.name,
        outgoing_addresses=(outgoing,) if _is_ip(outgoing) else (),
        outgoing_host="" if _is_ip(outgoing) else outgoing,
        incoming_host="" if _is_ip(domain.incoming_host) else domain.incoming_host,
        autoconfig_host=getattr(settings, "AUTOCONFIG_HOST", ""),
        dkim=tuple(
            dnscheck.DkimExpectation(
                selector=key.selector,
                algorithm=key.algorithm,
                public_b64=key.public_key,
                # Until DNS shows it the first time, a new key's absence is expected.
                required=key.state != DkimKey.State.CREATED,
            )
            for key in keys
        ),
        mta_sts=domain.mta_sts,
        tls_rpt=domain.tls_rpt,
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def run_dns_check(
    domain: Domain,
    *,
    actor: Actor | None = None,
    resolver: dns.resolver.Resolver | None = None,
    now: dt.datetime | None = None,
) -> CheckRun:
    """Check the domain's DNS, keep the results as one run, then move its DKIM keys along.

    The DNS questions are asked before any transaction opens: a slow server holds no lock.
    """
    now = now or timezone.now()
    resolver = resolver or dns_resolver()
    checks = dnscheck.check_domain(expectations(domain), resolver=resolver)
    with transaction.atomic():
        locked = Domain.objects.select_for_update().get(pk=domain.pk)
        run = (latest_run(locked) or 0) + 1
        DnsCheckResult.objects.bulk_create(_result(locked, run, check, now) for check in checks)
        locked.dns_results.filter(run__lte=run - KEEP_RUNS).delete()
        counts = dict.fromkeys(DnsCheckResult.Status.values, 0)
        for check in checks:
            counts[str(check.status)] += 1
        if actor is not None:
            audit(actor, "dns.check", locked.name, after={"run": run, **counts})
    key_changes = dkim.advance(domain, dkim.resolver_lookup(resolver), now)
    if key_changes:
        audit(actor or SYSTEM, "dkim.advance", domain.name, after={"changes": key_changes})
    return CheckRun(run=run, counts=counts, key_changes=key_changes)


def _result(domain: Domain, run: int, check: dnscheck.Check, now: dt.datetime) -> DnsCheckResult:
    params: dict[str, Any] = dict(check.params)
    if check.notes:
        params["notes"] = list(check.notes)
    return DnsCheckResult(
        domain=domain,
        run=run,
        kind=check.kind[:80],
        status=str(check.status),
        problem=check.problem[:40],
        found=check.found,
        expected=check.expected,
        fix=check.fix,
        params=params,
        checked_at=now,
    )


class _Params(dict):
    """A result's params for a message: a key the check did not give shows as "?"."""

    def __missing__(self, key: str) -> str:
        return "?"


PROBLEM_TEXT = {
    "missing": _("There is no record at %(name)s."),
    "timeout": _(
        "No DNS server answered for %(unchecked)s, so this could not be checked. The next run "
        "tries again."
    ),
    "several": _("There are %(count)s records at %(name)s where there should be one."),
    "syntax": _("The record is not valid: “%(term)s” is wrong."),
    "syntax:tag": _("The record is not valid: “%(tag)s=%(value)s” is wrong."),
    "too-many-lookups": _(
        "SPF needs %(lookups)s DNS lookups; receivers stop at %(limit)s and treat the record "
        "as broken."
    ),
    "void-lookups": _("%(void)s SPF terms name nothing (at most %(limit)s are tolerated)."),
    "broken-include": _("SPF includes %(include)s, which has no single valid SPF record."),
    "not-allowed": _(
        "SPF does not allow the outgoing server (%(address)s): the result is “%(result)s”."
    ),
    "no-all": _("SPF ends without an “all” term: receivers are not told about other servers."),
    "mismatch": _("DNS has a record here, but not the one expected."),
    "unresolvable-mx": _("The mail servers of the MX records have no address: %(hosts)s."),
    "null-mx": _("The domain announces that it receives no mail at all (null MX)."),
    "unresolvable-ns": _("The name servers have no address: %(hosts)s."),
    "weak-policy": _("SPF allows every server on the internet to send as the domain (+all)."),
    "weak-policy:dmarc": _(
        "The DMARC policy is “none”: mail that fails the checks is delivered anyway."
    ),
    "unauthorised-reports": _(
        "DMARC reports go to %(addresses)s, whose domain has not agreed to receive them: it "
        "should publish %(records)s."
    ),
}
NOTE_TEXT = {
    "resolver-differs": _(
        "The domain's servers have the new record, but the resolver still answers "
        "“%(resolver_answer)s”: other mail servers see that until their caches expire."
    ),
    "resolver-timeout": _("The resolver did not answer; the domain's own servers did."),
    "authoritative-timeout": _(
        "The domain's name servers did not answer; the resolver's answer was used."
    ),
    "softfail-all": _("SPF ends in “~all” (soft fail): fine, though “-all” is stricter."),
    "neutral-all": _("SPF ends in “?all”: other servers are neither allowed nor refused."),
    "unevaluated-terms": _("Some SPF terms could not be evaluated here: %(unevaluated)s."),
    "outgoing-unknown": _(
        "The domain has no outgoing server set: SPF could not be tested against it."
    ),
    "flattened": _(
        "The proposed record lists today's addresses in place of a and mx terms: update it "
        "when they change."
    ),
    "guessed-host": _("No server is set for the domain: the proposed record names mail.%(zone)s."),
    "policy-not-checked": _("The MTA-STS policy file itself (over HTTPS) is not fetched."),
    "partial-pct": _("DMARC applies to %(pct)s%% of failing mail only."),
}


@dataclasses.dataclass(frozen=True)
class Explained:
    result: DnsCheckResult
    problem: str  # "" when none
    notes: list[str]


def explain(result: DnsCheckResult) -> Explained:
    """A result's problem and notes as sentences, with their parameters."""
    params = _Params(result.params)
    params.setdefault("zone", result.domain.name)
    check = result.kind.partition(":")[0]

    def sentence(code: str, *texts: dict[str, Any]) -> str:
        variants = [f"{code}:{check}", f"{code}:tag" if "tag" in params else "", code]
        for text in texts:
            for variant in variants:
                if variant in text:
                    return str(text[variant]) % params
        return code  # a code this page does not know yet, as it is

    notes = [sentence(code, NOTE_TEXT, PROBLEM_TEXT) for code in params.get("notes", [])]
    problem = sentence(result.problem, PROBLEM_TEXT) if result.problem else ""
    return Explained(result, problem, notes)


def latest_results(domain: Domain, run: int | None = None) -> list[DnsCheckResult]:
    """The results of one run (the latest by default), the worst first."""
    run = run if run is not None else latest_run(domain)
    if run is None:
        return []
    order = {"error": 0, "warning": 1, "pending": 2, "ok": 3}
    results = list(domain.dns_results.filter(run=run))
    return sorted(results, key=lambda result: (order.get(result.status, 9), result.kind))


def latest_run(domain: Domain) -> int | None:
    return domain.dns_results.order_by("-run").values_list("run", flat=True).first()


def run_history(domain: Domain) -> list[dict[str, Any]]:
    """The kept runs, newest first, with their time and status counts."""
    grouped = (
        domain.dns_results.order_by()
        .values("run")
        .annotate(
            checked_at=Max("checked_at"),
            errors=Count("pk", filter=Q(status=DnsCheckResult.Status.ERROR)),
            warnings=Count("pk", filter=Q(status=DnsCheckResult.Status.WARNING)),
            pending=Count("pk", filter=Q(status=DnsCheckResult.Status.PENDING)),
            ok=Count("pk", filter=Q(status=DnsCheckResult.Status.OK)),
        )
        .order_by("-run")
    )
    return list(grouped)


def with_dns_health(domains: QuerySet[Domain]) -> QuerySet[Domain]:
    """Each domain with its latest run's counts (dns_run, dns_errors, …) in the same query."""
    latest = DnsCheckResult.objects.filter(domain=OuterRef("pk")).order_by("-run")
    latest_of_outer = (
        DnsCheckResult.objects.filter(domain=OuterRef(OuterRef("pk")))
        .order_by("-run")
        .values("run")[:1]
    )

    def count(status: str) -> Coalesce:
        rows = (
            DnsCheckResult.objects.filter(
                domain=OuterRef("pk"), status=status, run=Subquery(latest_of_outer)
            )
            .order_by()
            .values("domain")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return Coalesce(Subquery(rows, output_field=IntegerField()), 0)

    return domains.annotate(
        dns_run=Subquery(latest.values("run")[:1]),
        dns_checked_at=Subquery(latest.order_by("-run", "-checked_at").values("checked_at")[:1]),
        dns_errors=count(DnsCheckResult.Status.ERROR),
        dns_warnings=count(DnsCheckResult.Status.WARNING),
        dns_pending=count(DnsCheckResult.Status.PENDING),
    )


def health_of(domain: Domain) -> str:
    """ok, warning, error, pending or "" (never checked), from `with_dns_health`'s columns."""
    if getattr(domain, "dns_run", None) is None:
        return ""
    if domain.dns_errors:
        return DnsCheckResult.Status.ERROR
    if domain.dns_warnings:
        return DnsCheckResult.Status.WARNING
    if domain.dns_pending:
        return DnsCheckResult.Status.PENDING
    return DnsCheckResult.Status.OK


# The operations dashboard ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: dt.date
    value: int


@dataclasses.dataclass(frozen=True)
class BarChart:
    """A bar per day, as SVG geometry (the template draws the rectangles)."""

    width: int
    height: int
    bars: list[Bar]
    total: int
    peak: int


def bar_chart(days: list[tuple[dt.date, int]], width: int = 280, height: int = 64) -> BarChart:
    peak = max((value for _day, value in days), default=0)
    step = width / max(len(days), 1)
    gap = min(2.0, step / 4)
    bars = []
    for index, (day, value) in enumerate(days):
        bar_height = (value / peak) * (height - 1) if peak else 0
        # A day with something shows at least a sliver; an empty day a hairline on the axis.
        bar_height = max(bar_height, 2.0 if value else 0.5)
        bars.append(
            Bar(
                x=round(index * step + gap / 2, 2),
                y=round(height - bar_height, 2),
                width=round(step - gap, 2),
                height=round(bar_height, 2),
                day=day,
                value=value,
            )
        )
    return BarChart(width, height, bars, sum(value for _day, value in days), peak)


@dataclasses.dataclass(frozen=True)
class Dashboard:
    users: int
    staff: int
    accounts: int
    failing_count: int
    failing_accounts: list[MailAccount]
    outbox: dict[str, int]
    failed_sends_count: int
    failed_sends: list[Draft]
    messages_chart: BarChart
    junk_chart: BarChart
    domains: list[Domain]
    failing_domains: list[Domain]
    database: core_services.Check
    broker: core_services.Check
    worker_last_seen: dt.datetime | None
    worker_ok: bool


def failing_accounts_q() -> Q:
    """Accounts whose latest sync failed (an error newer than the last success)."""
    return ~Q(last_error="") & (
        Q(last_success_at__isnull=True) | Q(last_error_at__gte=F("last_success_at"))
    )


def dashboard(now: dt.datetime | None = None) -> Dashboard:
    """Everything the operations page shows, in a fixed number of queries."""
    now = now or timezone.now()
    user_counts = get_user_model().objects.aggregate(
        users=Count("pk", filter=Q(is_active=True)),
        staff=Count("pk", filter=Q(is_active=True, is_staff=True)),
    )
    account_counts = MailAccount.objects.aggregate(
        accounts=Count("pk"), failing=Count("pk", filter=failing_accounts_q())
    )
    failing = list(
        MailAccount.objects.filter(failing_accounts_q())
        .select_related("user")
        .order_by("-last_error_at")[:DASHBOARD_LIST_LIMIT]
    )
    failed_since = now - dt.timedelta(days=FAILED_SENDS_DAYS)
    failed_q = Q(state=Draft.State.DRAFT, updated_at__gte=failed_since) & ~Q(last_error="")
    outbox = Draft.objects.aggregate(
        queued=Count("pk", filter=Q(state=Draft.State.QUEUED)),
        sending=Count("pk", filter=Q(state=Draft.State.SENDING)),
        retrying=Count("pk", filter=Q(state=Draft.State.RETRYING)),
        failed=Count("pk", filter=failed_q),
    )
    failed_count = outbox.pop("failed")
    failed_sends = list(Draft.objects.filter(failed_q).order_by("-updated_at")[:10])

    start = (now - dt.timedelta(days=DASHBOARD_DAYS - 1)).date()
    days = [start + dt.timedelta(days=n) for n in range(DASHBOARD_DAYS)]
    since = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    messages = _per_day(MessageContent.objects.filter(date__gte=since, date__lte=now), days)
    junk = _per_day(
        Message.objects.filter(folder__role=Folder.Role.JUNK, date__gte=since, date__lte=now),
        days,
    )

    domains = list(with_dns_health(Domain.objects.all()))
    worker_seen = core_services.worker_last_seen()
    return Dashboard(
        users=user_counts["users"],
        staff=user_counts["staff"],
        accounts=account_counts["accounts"],
        failing_count=account_counts["failing"],
        failing_accounts=failing,
        outbox=outbox,
        failed_sends_count=failed_count,
        failed_sends=failed_sends,
        messages_chart=bar_chart(messages),
        junk_chart=bar_chart(junk),
        domains=domains,
        failing_domains=[domain for domain in domains if domain.dns_errors],
        database=core_services.check_database(),
        broker=core_services.check_broker(),
        worker_last_seen=worker_seen,
        worker_ok=worker_seen is not None and now - worker_seen <= WORKER_STALE_AFTER,
    )


def _per_day(rows: QuerySet, days: list[dt.date]) -> list[tuple[dt.date, int]]:
    counted = dict(
        rows.annotate(day=TruncDate("date", tzinfo=dt.UTC))
        .order_by()
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    return [(day, counted.get(day, 0)) for day in days]


# Autoconfiguration -------------------------------------------------------------------------------


def known_settings(domain_name: str) -> autoconfig.Suggestion | None:
    """The servers of an active managed domain, for mailcore.autoconfig.discover's `known`.

    The username is left blank: the domain alone does not say it, and the account form fills in
    the address."""
    domain = Domain.objects.filter(name=domain_name.strip().lower(), active=True).first()
    if domain is None or not domain.incoming_host:
        return None
    try:
        incoming = autoconfig.ServerGuess(
            domain.incoming_protocol,
            domain.incoming_host,
            domain.incoming_port,
            domain.incoming_security,
            "",
        )
        outgoing = (
            autoconfig.ServerGuess(
                "smtp", domain.smtp_host, domain.smtp_port, domain.smtp_security, ""
            )
            if domain.smtp_host
            else None
        )
    except ValueError:  # a row edited outside the admin's form
        logger.warning("managed domain %s has unusable server settings", domain.name)
        return None
    return autoconfig.Suggestion(incoming, outgoing, autoconfig.Source.KNOWN)
