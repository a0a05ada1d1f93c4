"""Sign-in timing for a known address (wrong password) against an unknown one.

Run by hand: `.venv/bin/python bench/signin_timing.py [attempts]`. It uses a throwaway SQLite
database and the production password hasher, and prints the median and spread of each case side
by side. Similar figures mean a failed sign-in does not reveal whether an address has an account.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix="courrier-bench-")
for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
    os.environ.pop(name, None)
os.environ["DJANGO_SETTINGS_MODULE"] = "webmail.settings"

import django  # noqa: E402

django.setup()

from allauth.account.models import EmailAddress  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from accounts.models import User  # noqa: E402


def timed_sign_in(email: str) -> float:
    client = Client()
    start = time.perf_counter()
    response = client.post("/accounts/login/", {"login": email, "password": "wrong password!"})
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.status_code
    cache.clear()  # keep the rate limits out of the measurement
    return elapsed * 1000


def main() -> None:
    attempts = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    setup_test_environment()
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("known@example.org", "a real password 123")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    timed_sign_in("warm-up@example.org")
    known, unknown = [], []
    for _ in range(attempts):  # interleaved, so that drift affects both alike
        known.append(timed_sign_in("known@example.org"))
        unknown.append(timed_sign_in("nobody@example.org"))
    print(f"{'case':<28}{'median ms':>10}{'min':>8}{'max':>8}")
    for label, values in (("known address, bad password", known), ("unknown address", unknown)):
        print(
            f"{label:<28}{statistics.median(values):>10.1f}{min(values):>8.1f}{max(values):>8.1f}"
        )
    ratio = statistics.median(unknown) / statistics.median(known)
    print(f"unknown/known median ratio: {ratio:.3f} over {attempts} attempts each")


if __name__ == "__main__":
    main()
