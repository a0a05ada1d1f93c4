# Courrier's image: web (gunicorn), Celery worker and scheduler all run from it (see compose.yaml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles

RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin courrier

WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN pip install -r requirements.txt -c constraints.txt

COPY . .
# Build-time only: throwaway keys let production settings load for collectstatic; nothing is kept.
RUN python manage.py compilemessages --verbosity 0 --ignore var \
    && COURRIER_MODE=production ALLOWED_HOSTS=build DATA_DIR=/tmp/build \
       SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
       ENCRYPTION_KEYS="$(python -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')" \
       python manage.py collectstatic --noinput --verbosity 0 \
    && rm -rf /tmp/build \
    && mkdir -p /data && chown courrier:courrier /data

USER courrier
VOLUME ["/data"]
EXPOSE 8000
CMD ["gunicorn", "webmail.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
