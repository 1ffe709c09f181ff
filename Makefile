# Conveyor. The two commands: `make run` (the whole pipeline on this machine)
# and `make test` (every test). Both install what is missing first.
SWIFT ?= swift
SHARED ?= $(abspath ../shared)
# scripts/fetch-model.sh downloads the official weights unless CONVEYOR_WEIGHTS_PATH
# names a local copy. Where ../shared exists (CI, which has no network) its fixture
# weights are that copy; `make run CONVEYOR_WEIGHTS_PATH=` downloads anyway.
export CONVEYOR_WEIGHTS_PATH ?= $(wildcard $(SHARED)/models/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5)

MODEL ?= models/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5
# The ImageNet class names and the sample image ship with the repository (data/README.md).
LABELS ?= data/image_net_labels.json
IMAGE ?= data/cat.jpg
# `make test` runs each fuzz target this long on its seed corpus; `make fuzz` this long.
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_SECONDS ?= 600

.PHONY: deps models build test fuzz run classify bench clean

deps:
	./scripts/install-deps.sh

models:
	./scripts/fetch-model.sh

build: deps
	$(SWIFT) build -c release --product conveyor

## Installs what is missing, builds in release and starts the whole pipeline:
## a private mosquitto, the result store, one worker and the ingress on :8000.
run: build models
	.build/release/conveyor up --model $(MODEL) --labels $(LABELS) --sample-image $(IMAGE)

## Installs what is missing and runs every test (all XCTest: the empty Swift Testing
## pass is skipped, so the closing line is XCTest's summary), after a short run of each
## fuzz target on its seed corpus.
test: deps
	$(SWIFT) build --build-tests
	./scripts/fuzz.sh all $(FUZZ_SMOKE_SECONDS)
	$(SWIFT) test --skip-build --disable-swift-testing

## Each fuzz target for FUZZ_SECONDS (default 600) from its seeds; see docs/testing.md.
fuzz:
	./scripts/fuzz.sh all $(FUZZ_SECONDS)

## Classifies the sample image.
classify: build models
	.build/release/conveyor classify $(IMAGE) --model $(MODEL) --labels $(LABELS)

## Inference speed for batch 1, 4 and 16.
bench: build models
	.build/release/conveyor bench --model $(MODEL) --batch 1,4,16

clean:
	rm -rf .build .build-fuzz
