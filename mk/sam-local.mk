# `sam local invoke` / `sam local start-api` offline (issue 25; docs/DEPLOY.md "Run the functions locally").
# Included by the main Makefile.
#
#   make sam-local-image  Debian's docker.io + debootstrap when missing, dockerd started without touching the host's
#                         network settings, and the local Lambda python3.12 base image built when its inputs changed
#   make sam-local        + sam build + the demo version, then the stand-ins (moto server, redis-server, OpenSearch
#                         and SageMaker runtime stand-ins), seeded; writes build/sam-local/env.json
#   make sam-local-stop   stops the stand-ins and the Docker engine that sam-local-image started

_SAM_LOCAL_MK_DEFAULT_GOAL := $(.DEFAULT_GOAL)



SAM_LOCAL_DIR ?= build/sam-local

$(DOCKERD):
	$$([ "$$(id -u)" -eq 0 ] || echo sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$([ "$$(id -u)" -eq 0 ] || echo sudo) apt-get install -y -qq docker.io

$(DEBOOTSTRAP):
	$$([ "$$(id -u)" -eq 0 ] || echo sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$([ "$$(id -u)" -eq 0 ] || echo sudo) apt-get install -y -qq debootstrap

.PHONY: sam-local-image sam-local sam-local-stop
sam-local-image: $(BIN)/.installed $(DOCKERD) $(DEBOOTSTRAP)  ## dockerd (host network untouched) + the offline Lambda python3.12 base image
	$(BIN)/tastebud sam-local image --dir $(SAM_LOCAL_DIR)

sam-local: sam-local-image sam-build $(DEMO_ARTIFACTS)/CURRENT $(REDIS_SERVER)  ## stand-ins for the functions' AWS dependencies, seeded with the demo version
	$(BIN)/tastebud sam-local up --artifacts $(DEMO_ARTIFACTS) --data $(DEMO_DATA) --dir $(SAM_LOCAL_DIR)

sam-local-stop: $(BIN)/.installed  ## stop the stand-ins and the Docker engine sam-local-image started
	$(BIN)/tastebud sam-local down --dir $(SAM_LOCAL_DIR)

.DEFAULT_GOAL := $(_SAM_LOCAL_MK_DEFAULT_GOAL)
