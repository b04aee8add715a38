# yibao: two commands do all set-up on a fresh Debian machine.
#   make run   installs into .venv and serves on http://127.0.0.1:8000 (SQLite in var/, demo data on first start)
#   make test  installs into .venv and runs the whole suite on SQLite and on PostgreSQL
.PHONY: run test install demo bench clean

run: install
	.venv/bin/yibao serve --demo

test:
	bash scripts/test.sh

install:
	bash scripts/install.sh

demo: install
	.venv/bin/yibao demo

clean:
	rm -rf .venv var .pytest_cache .hypothesis
