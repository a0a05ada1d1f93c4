from __future__ import annotations

from celery import shared_task

from domains import services
from domains.models import Domain


@shared_task(name="domains.check_all_domains")
def check_all_domains() -> None:
    """Scheduled: every active domain's DNS, one task each (a slow domain delays no other)."""
    for domain_id in Domain.objects.filter(active=True).values_list("pk", flat=True):
        check_domain.delay(domain_id)


@shared_task(name="domains.check_domain")
def check_domain(domain_id: int) -> None:
    """One domain's DNS checks, kept as a run, then its DKIM keys moved along. A domain deleted
    or deactivated since it was queued is skipped."""
    domain = Domain.objects.filter(pk=domain_id, active=True).first()
    if domain is not None:
        services.run_dns_check(domain)
