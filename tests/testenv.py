"""Loaded first (``-p tests.testenv``): points the settings at this machine's real services.

It has to run before pytest-django imports the settings, which a conftest would be too late for.
Every value can be overridden from the environment, e.g. to run against another PostgreSQL.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

# A database name of this checkout's own (pytest-django tests in "test_" + it): two checkouts'
# runs on one machine (the CI's fresh clone and a working tree, say) must not drop each other's
# test database, which pytest-django does to a leftover one it finds.
_checkout = hashlib.sha256(str(Path(__file__).resolve().parent.parent).encode()).hexdigest()[:8]
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/courrier_{_checkout}")
# Persistent connections would outlive the live server's request threads and block teardown.
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# Celery tasks run eagerly, their arguments through a JSON round trip (webmail.celery.CourrierTask).
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
# DNS goes to the mail stack's dnsmasq (mailstack/mailstack's DNS port): it answers for the test
# domains and refuses the rest, forwarding nothing, so a test never asks the outside world (the
# spam filter checks DKIM, DMARC and SPF of every new Inbox message the sync stores).
os.environ.setdefault("DNS_RESOLVER", "127.0.0.1:10053")
if "DATA_DIR" not in os.environ:
    _data_dir = tempfile.mkdtemp(prefix="courrier-test-")
    os.environ["DATA_DIR"] = _data_dir
    atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)
