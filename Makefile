# The two set-up commands of the README:
#   make chat   install what is needed, build, and run the main job
#   make test   install what is needed, build, and run every test
BUILD ?= build

.PHONY: all deps build chat test clean

all: build

deps:
	sh scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD)

chat: build
	sh scripts/main-job.sh $(BUILD)

test: deps
	sh scripts/run-tests.sh

clean:
	rm -rf $(BUILD) build-test build-asan build-fuzz
