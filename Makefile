# Thin wrapper over CMake and the local stack. See README.md.
BUILD ?= build
TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)

.PHONY: all build setup stack-up stack-down test test-asan demo bench format clean

all: build

setup:
	bash deploy/setup.sh

build:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(TYPE)
	cmake --build $(BUILD) -j $(JOBS)

stack-up:
	bash deploy/local/stack.sh up

stack-down:
	bash deploy/local/stack.sh down

# The whole suite: set-up, build (normal and sanitized), stack, ctest.
test:
	bash deploy/setup.sh
	bash tests/run.sh

demo:
	bash deploy/setup.sh
	bash deploy/local/demo.sh

bench:
	bash deploy/setup.sh
	bash bench/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan
