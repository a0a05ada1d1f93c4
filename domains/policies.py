"""What a managed domain's policies mean for its users: second factor, sign-up, attachments."""

from __future__ import annotations

from django.core.cache import cache

from domains.models import Domain


def domain_of(address: str) -> str:
    """The IDNA form of an address's domain, lower case ("" when it has none)."""
    domain = address.rpartition("@")[2].strip().lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return ""


def active_domain(address: str) -> Domain | None:
    """The active managed domain of an address, if any."""
    name = domain_of(address)
    return Domain.objects.filter(name=name, active=True).first() if name else None


MFA_CACHE_KEY = "domains:mfa-required"


def mfa_required_for(address: str) -> bool:
    """Asked on every request of a user without a second factor: a cache read, not a query."""
    names = cache.get(MFA_CACHE_KEY)
    if names is None:
        names = list(
            Domain.objects.filter(active=True, mfa_required=True).values_list("name", flat=True)
        )
        cache.set(MFA_CACHE_KEY, names, 300)
    return domain_of(address) in names


def forget_cached_policies() -> None:
    cache.delete(MFA_CACHE_KEY)


def signup_allowed_for(address: str) -> bool:
    domain = active_domain(address)
    return domain is not None and domain.signup_allowed


def any_signup_domain() -> bool:
    return Domain.objects.filter(active=True, signup_allowed=True).exists()


def attachment_limit_for(address: str, site_limit: int) -> int:
    """The site's limit, lowered by the sender's domain policy if it sets one."""
    domain = active_domain(address)
    if domain is None or not domain.max_attachments_mb:
        return site_limit
    return min(site_limit, domain.max_attachments_mb * 1024 * 1024)
