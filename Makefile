# Thin wrappers around npm scripts and the e2e harness. `make help` lists targets.
SHELL := /bin/bash
NODE := node_modules/.bin/node

.PHONY: help install run test unit e2e bench lint typecheck cluster-build cluster-up cluster-down

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

node_modules/.bin/node: package.json
	npm install --no-audit --no-fund
	@touch $@

install: node_modules/.bin/node ## install dependencies (Node 24 comes from the npm package node@24)

run: install ## run one pod in memory on http://127.0.0.1:8080 with the demo page (insecure dev auth)
	npm run dev

test: install ## typecheck, lint, unit and e2e tests
	npm test

unit: install ## unit tests only
	npm run test:unit

e2e: install ## e2e tests only
	npm run test:e2e

typecheck: install
	npm run typecheck

lint: install
	npm run lint
