"""Mail accounts: checking a server before saving, creating and removing accounts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dns.resolver
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from mailboxes import live, pop3, sync
from mailboxes.models import MailAccount
from mailboxes.sync import incoming_settings, outgoing_settings
from mailcore import autoconfig, connect

# What each connection problem means for the person who typed the settings.
PROBLEM_MESSAGES = {
    connect.Problem.DNS: _("The server name “%(host)s” does not exist. Check its spelling."),
    connect.Problem.REFUSED: _(
        "The server %(host)s refused the connection on port %(port)s. Check the port."
    ),
    connect.Problem.UNREACHABLE: _("The server %(host)s cannot be reached from here."),
    connect.Problem.TIMEOUT: _(
        "The server %(host)s did not answer on port %(port)s in time. Check the port, or try later."
    ),
    connect.Problem.TLS_CERTIFICATE: _(
        "The certificate of %(host)s cannot be trusted (%(detail)s). Courrier does not connect "
        "to servers whose identity it cannot check."
    ),
    connect.Problem.TLS_HANDSHAKE: _(
        "The encrypted connection to %(host)s:%(port)s failed. Check that the security setting "
        "matches the port (TLS on 993, 995, 465; STARTTLS on 143, 110, 587)."
    ),
    connect.Problem.STARTTLS_UNSUPPORTED: _(
        "The server %(host)s does not offer STARTTLS on port %(port)s."
    ),
    connect.Problem.AUTHENTICATION: _("The server refused the user name or the password."),
    connect.Problem.CAPABILITY: _("The server lacks something Courrier needs: %(detail)s."),
    connect.Problem.PROTOCOL: _(
        "Something other than a %(protocol)s server answered on %(host)s:%(port)s. Check the port."
    ),
    connect.Problem.OTHER: _("The connection to %(host)s failed: %(detail)s."),
}

Checker = Callable[..., connect.CheckResult]


def explain(server: connect.ServerSettings, result: connect.CheckResult) -> str:
    assert result.problem is not None
    return str(PROBLEM_MESSAGES[result.problem]) % {
        "host": server.host,
        "port": server.port,
        "protocol": server.protocol.value.upper(),
        "detail": result.detail,
    }


def check_account_settings(
    data: dict[str, Any], checker: Checker = connect.check_server
) -> dict[str, str]:
    """Connect to both servers as the account would; a message per failing side."""
    problems = {}
    for side, server in (("incoming", incoming_settings(data)), ("smtp", outgoing_settings(data))):
        result = checker(server, ca_file=settings.MAIL_CA_FILE or None)
        if not result.ok:
            problems[side] = explain(server, result)
    return problems


@transaction.atomic
def add_account(user: User, form_data: dict[str, Any]) -> MailAccount:
    account = MailAccount(user=user, **form_data)
    account.full_clean()
    account.save()
    return account


def remove_account(account: MailAccount) -> None:
    account.delete()


# Syncing -----------------------------------------------------------------------------------------

# Failures worth another try later; the others need the user to change something.
TRANSIENT_PROBLEMS = frozenset(
    {
        connect.Problem.TIMEOUT,
        connect.Problem.REFUSED,
        connect.Problem.UNREACHABLE,
        connect.Problem.DNS,
        connect.Problem.OTHER,
    }
)


def run_sync(account_id: int) -> sync.SyncReport | None:
    """Sync one account and record the outcome on it. None when there was nothing to do.

    Raises ``connect.ConnectionFailed`` for transient problems so that the task can retry; other
    failures are recorded on the account and end the attempt.
    """
    account = MailAccount.objects.filter(pk=account_id).first()
    if account is None:
        return None
    try:
        report = sync_one(account)
    except sync.AlreadySyncing:
        return None
    except connect.ConnectionFailed as failure:
        _record_error(account, failure.problem, failure.detail)
        if failure.problem in TRANSIENT_PROBLEMS:
            raise
        return None
    MailAccount.objects.filter(pk=account.pk).update(
        last_success_at=timezone.now(), last_error="", last_error_at=None
    )
    if report.fetched or report.flag_updates or report.removed:
        live.bump(account.user_id)
    return report


def sync_one(account: MailAccount) -> sync.SyncReport:
    """One pass over an account, by its protocol."""
    if account.protocol == MailAccount.Protocol.POP3:
        return pop3.sync_pop3_account(account)
    return sync.sync_account(account)


def _record_error(account: MailAccount, problem: connect.Problem, detail: str) -> None:
    message = f"{problem.value}: {detail}"[:500]
    MailAccount.objects.filter(pk=account.pk).update(
        last_error=message, last_error_at=timezone.now()
    )


# Autoconfiguration ------------------------------------------------------------------------------


def suggested_settings(address: str) -> dict[str, Any]:
    """Initial form values for ``address`` from known domains, DNS SRV or autoconfig XML."""
    resolver = None
    if settings.AUTOCONFIG_DNS_SERVER:
        host, _, port = settings.AUTOCONFIG_DNS_SERVER.rpartition(":")
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = int(port)
    from domains.services import known_settings

    suggestion = autoconfig.discover(
        address,
        known=known_settings,
        resolver=resolver,
        ca_file=settings.MAIL_CA_FILE or None,
        timeout=3.0,
    )
    initial: dict[str, Any] = {"email": address, "username": address}
    if suggestion is None:
        return initial
    incoming = suggestion.incoming
    initial.update(
        protocol=incoming.protocol.value,
        incoming_host=incoming.host,
        incoming_port=incoming.port,
        incoming_security=incoming.security.value,
        username=incoming.username or address,
        allow_insecure=suggestion.insecure,
    )
    if suggestion.outgoing is not None:
        initial.update(
            smtp_host=suggestion.outgoing.host,
            smtp_port=suggestion.outgoing.port,
            smtp_security=suggestion.outgoing.security.value,
        )
    return initial
