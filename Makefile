# Courrier's two set-up commands are `make run` and `make test`; the rest are helpers.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PORT ?= 8000
export PATH := $(BIN):$(PATH)

.PHONY: run test lint format messages compile-messages check-deploy mailstack-up mailstack-down clean compose-check constraints

# The virtualenv is rebuilt when a requirements file changes.
$(VENV)/.run-installed: requirements.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.run-installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

## constraints: re-pin every package (direct and indirect) after changing requirements*.txt.
constraints:
	rm -rf /tmp/courrier-pin && $(PYTHON) -m venv /tmp/courrier-pin
	/tmp/courrier-pin/bin/pip install --quiet -r requirements-dev.txt
	{ head -n 2 constraints.txt; /tmp/courrier-pin/bin/pip freeze; } > constraints.tmp
	mv constraints.tmp constraints.txt && rm -rf /tmp/courrier-pin

# Compiled catalogues are build output (not in git). msgfmt comes from gettext; without it the
# interface still runs, in English.
compile-messages: $(VENV)/.run-installed
	@if command -v msgfmt >/dev/null; then \
		$(BIN)/python manage.py compilemessages --verbosity 0 --ignore "$(VENV)" --ignore var; \
	else echo "msgfmt not found (Debian package gettext): the interface will be in English only."; fi

## run: web server, Celery worker and scheduler on embedded defaults (SQLite, filesystem broker).
run: $(VENV)/.run-installed compile-messages
	$(BIN)/python manage.py migrate --verbosity 0
	-$(BIN)/python manage.py demo --port $(PORT)
	@echo "Courrier is starting at http://127.0.0.1:$(PORT)/ (Ctrl-C stops everything)."
	@echo "Create a first admin with: .venv/bin/python manage.py createsuperuser"
	COURRIER_PORT=$(PORT) exec $(BIN)/honcho start --procfile Procfile

## test: installs what the tests need (Debian packages too, as root), then runs the whole suite.
test: $(VENV)/.dev-installed
	scripts/install-system-deps
	scripts/ensure-services
	$(MAKE) --no-print-directory compile-messages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## messages: refresh the French catalogue after changing user-visible strings (needs gettext).
messages: $(VENV)/.run-installed
	$(BIN)/python manage.py makemessages --locale fr --ignore "$(VENV)/*" --ignore "var/*" --no-obsolete
	$(BIN)/python manage.py makemessages --locale fr --domain djangojs --ignore "$(VENV)/*" --ignore "var/*" --ignore "static/vendor/*" --no-obsolete

check-deploy: $(VENV)/.run-installed
	COURRIER_MODE=production SECRET_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))') \
	ENCRYPTION_KEYS=$$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())') \
	ALLOWED_HOSTS=mail.example.org $(BIN)/python manage.py check --deploy --fail-level WARNING

mailstack-up:
	mailstack/mailstack up

mailstack-down:
	mailstack/mailstack down

clean:
	rm -rf $(VENV) var

## compose-check: validate compose.yaml with Debian's docker-compose (no Docker engine needed).
compose-check:
	@scripts/install-system-deps
	@d=$$(mktemp -d) && cp compose.yaml $$d/ \
		&& sed 's/^POSTGRES_PASSWORD=$$/POSTGRES_PASSWORD=ci/' .env.example > $$d/.env \
		&& docker-compose --file $$d/compose.yaml config --quiet && rm -rf $$d \
		&& echo "compose.yaml is valid"
