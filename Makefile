# Thin wrappers around npm scripts and the e2e harness. `make help` lists targets.
SHELL := /bin/bash
NODE := node_modules/.bin/node

.PHONY: help install run test test-deps nats-build unit e2e bench lint typecheck cluster-build cluster-up cluster-down

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

node_modules/.bin/node: package.json
	npm install --no-audit --no-fund
	@touch $@

install: node_modules/.bin/node ## install dependencies (Node 24 comes from the npm package node@24)

run: install ## run one pod in memory on http://127.0.0.1:8080 with the demo page (insecure dev auth)
	npm run dev

test-deps: ## install chromium/coturn/redis/nats when missing and start Redis and NATS
	scripts/install-test-deps.sh

nats-build: ## build the current nats-server the fault tests run, once per machine (~/.cache/switchboard)
	scripts/build-nats-server.sh

test: install test-deps nats-build cluster-build ## typecheck, lint, unit, browser and e2e tests (builds the local control plane and nats-server once per machine)
	npm test

unit: install ## unit tests only
	npm run test:unit

e2e: install nats-build ## e2e tests only
	npm run test:e2e

bench: install ## benchmarks side by side with PeerJS (docs/benchmarks.md); QUICK=1 for a short run, ARGS="--help" for options
	npm run bench -- $(if $(QUICK),--quick) $(ARGS)

typecheck: install
	npm run typecheck

lint: install
	npm run lint

# Local Kubernetes control plane (e2e/cluster, docs/local-kubernetes.md).
CLUSTER_RUN := $(HOME)/.cache/switchboard/cluster/run
.PHONY: cluster-env cluster-status cluster-test autoscale-demo

cluster-build: ## build kube-apiserver, controller-manager, scheduler, kubectl, etcd, helm once per machine (~/.cache/switchboard); install Prometheus
	bash e2e/cluster/build.sh

cluster-up: install cluster-build ## start the local control plane in network namespace sbk8s-1 (API https://10.200.1.2:6443; root); then: eval "$$(make -s cluster-env)"
	bash e2e/cluster/up.sh

autoscale-demo: cluster-up ## the local control plane, the operator and an autoscaled SignalingCluster under a load stepped up and down (ARGS="--steps 12:30,36:60,12:90")
	$(NODE) --disable-warning=ExperimentalWarning e2e/src/load/autoscale-demo.ts $(ARGS)

cluster-down: ## stop the local control plane and its pods, remove its network namespace and those of crashed runs (state kept; PURGE=1 deletes it)
	bash e2e/cluster/down.sh $(if $(PURGE),--purge)

cluster-env: ## print the exports (KUBECONFIG, PATH with kubectl and helm) for the running local cluster
	@cat $(CLUSTER_RUN)/env

cluster-status: ## show the local cluster's nodes and pods
	@source $(CLUSTER_RUN)/env && kubectl get nodes,pods -A -o wide

cluster-test: install cluster-build ## run the local control plane's own tests
	$(NODE) --test --test-concurrency=1 'e2e/src/cluster/**/*.test.ts'
