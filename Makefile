# The two commands in README.md, plus the builds CI uses. Everything goes through CMake;
# this file only names the common runs.
BUILD     ?= build
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
CMAKEOPTS ?=

.PHONY: all bootstrap build test demo asan werror fuzz fuzz-run format format-check bench clean

all: build

bootstrap:
	@./scripts/bootstrap

build: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKEOPTS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# A test that hangs fails after 15 minutes instead of holding the run (the longest takes
# about a minute).
test: build
	@cd $(BUILD) && ctest --output-on-failure --timeout 900 -j $(JOBS)

demo: build
	@./scripts/demo $(BUILD)/regvault

# Unit tests under AddressSanitizer and UndefinedBehaviorSanitizer.
asan: bootstrap
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DREGVAULT_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@cd build-asan && ctest --output-on-failure --timeout 900 -j $(JOBS) -L 'unit|fuzz'

werror: bootstrap
	@cmake -S . -B build-werror -DREGVAULT_WERROR=ON >/dev/null
	@cmake --build build-werror -j $(JOBS)

# libFuzzer targets (clang). Run one with: build-fuzz/fuzz_<name> tests/fuzz/corpus/fuzz_<name>
fuzz: bootstrap
	@CC=clang cmake -S . -B build-fuzz -DREGVAULT_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

# Every libFuzzer target for FUZZ_SECONDS (default 60) each; new inputs and crashes go under
# build-fuzz/fuzz-work/, never into the seed corpora. Exits 1 naming any target that failed.
fuzz-run: fuzz
	@./scripts/fuzz-run build-fuzz

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

bench: build
	@./scripts/bootstrap --bench
	@./bench/run-all $(BUILD)/regvault

clean:
	rm -rf $(BUILD) build-asan build-werror build-fuzz
