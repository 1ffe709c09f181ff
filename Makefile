# Conveyor: the two commands are `make run` and `make test`.
SWIFT ?= swift
SHARED ?= $(abspath ../shared)
MODEL ?= $(SHARED)/models/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5
IMAGE ?= $(SHARED)/data/images/cat.jpg

.PHONY: deps build test run classify bench clean

deps:
	./scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release --product conveyor

## Installs what is missing and runs every test.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

## Classifies the sample image with the configured model.
run classify: build
	.build/release/conveyor classify $(IMAGE) --model $(MODEL)

## Prints inference speed for batch 1, 4 and 16.
bench: build
	.build/release/conveyor bench --model $(MODEL) --batch 1,4,16

clean:
	rm -rf .build
