# wasm-bpf: `make run` (as root; `sudo make run` otherwise) sets everything up and runs sigsnoop; `make test` runs the tests;
# `make test-unit` runs the kernel-free ones as any user.
PYTHON   ?= python3
EXAMPLES := bootstrap sigsnoop execve opensnoop runqlat xdpcount tcbytes taskiter profile ufunc usdt sockfilter cgroupskb unlinkwatch tcpcc syscount sysclass \
            rust_bootstrap rust_runqlat rust_xdpcount
DEB_PKGS := clang-19 lld-19 llvm libbpf-dev bpftool libelf-dev zlib1g-dev wasi-libc \
            libclang-rt-19-dev-wasm32 iproute2 gcc make pkg-config systemtap-sdt-dev \
            rustc cargo libstd-rust-dev-wasm32 lld-14 \
            docker-registry skopeo apache2-utils prometheus
STAMP    := build/.setup-done

.PHONY: setup deps install kernel-fs examples run test test-unit bench soak soak-serve fuzz clean

setup: deps install kernel-fs

# Debian packages: installed only when one is missing, so repeated runs are quick.
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

# The Python package, with the C shim compiled by cffi against the system libbpf.
install:
	$(PYTHON) -m pip install -q --disable-pip-version-check --root-user-action=ignore setuptools wheel cffi pytest hypothesis mypy httpx kubernetes-validate
	$(PYTHON) -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-build-isolation -e .
	$(PYTHON) -m compileall -q runtime/wasm_bpf guest_sdk  # bytecode now: PYTHONDONTWRITEBYTECODE=1 runs would compile every start

# tracefs (tracepoint attach), bpffs and cgroup v2: mounted where missing.
kernel-fs:
	@mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
	@mountpoint -q /sys/kernel/debug || mount -t debugfs nodev /sys/kernel/debug || true
	@mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	@grep -q " cgroup2 " /proc/mounts || { mkdir -p /sys/fs/cgroup/unified; mount -t cgroup2 none /sys/fs/cgroup/unified; }

examples: setup
	@for e in $(EXAMPLES); do $(MAKE) --no-print-directory -C wasm_examples/$$e || exit 1; done

run: examples
	wasm-bpf run wasm_examples/sigsnoop/sigsnoop.wasm

test: examples
	$(PYTHON) -m pytest -q tests

# The kernel-free tests (parsers, decoders, layouts, policy files, errno, types): no root,
# no mounts, no example built. Needs the build tools `make deps` installs (clang, libbpf-dev,
# bpftool: in /usr/sbin, outside a user's PATH on Debian) and a Python environment the user
# may install into (a virtualenv: `make test-unit PYTHON=venv/bin/python`).
test-unit: install
	PATH="$$PATH:/usr/sbin" $(PYTHON) -m pytest -q -m unit tests

# Throughput, start-up and memory figures: bench-results/results.json and a table;
# hot plug with `wasm-bpf serve`: bench-results/serve.json.
bench: examples
	$(PYTHON) bench/run.py
	$(PYTHON) bench/pyapi.py
	$(PYTHON) bench/serve.py

# 10 minutes at full producer rate: exact record accounting and RSS growth
# (bench-results/soak.json). `make soak SOAK_SECONDS=60` for a shorter run.
soak: examples
	$(PYTHON) bench/soak.py

# `wasm-bpf serve` churn: 8 clients starting, updating and deleting instances for
# SERVE_SOAK_SECONDS (600); leaks and RSS growth in bench-results/serve_soak.json.
SERVE_SOAK_SECONDS ?= 600
soak-serve: examples
	$(PYTHON) bench/serve_soak.py --seconds $(SERVE_SOAK_SECONDS)

# The fuzzers (docs/fuzzing.md): FUZZ_SECONDS per target (imports, elf, wasm); figures
# in bench-results/fuzz.json, reproducing inputs in bench-results/fuzz-crashes/.
FUZZ_SECONDS ?= 300
fuzz: examples
	$(PYTHON) -m fuzz --seconds $(FUZZ_SECONDS)

clean:
	rm -rf build bench/build fuzz/build
	@for e in $(EXAMPLES); do $(MAKE) --no-print-directory -C wasm_examples/$$e clean; done
