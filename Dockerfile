# syntax=docker/dockerfile:1
# The ebpf-collector image: docker build -t ebpf-collector:0.1.0 .
#
# The BPF programs are compiled here, at build time, against a vmlinux.h dumped
# from the build host's BTF (/sys/kernel/btf/vmlinux, which RUN steps can read).
# They are CO-RE: libbpf relocates every kernel field access against the BTF of
# the kernel the container runs on, so the image runs on any kernel with BTF,
# not only on the build host's. Compiling at container start instead would put
# clang and the headers (some 500 MB) in the image, cost every start a compile,
# and turn a build error into a failure on a production node. A build host
# without BTF can provide the header in the context instead:
#   bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h
# (on any machine with BTF), then build.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      clang llvm make g++ python3 libbpf-dev bpftool libelf-dev libdw-dev zlib1g-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/ebpf-collector

COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY bpf/ bpf/
RUN if [ ! -f bpf/vmlinux.h ] && [ ! -r /sys/kernel/btf/vmlinux ]; then \
      echo "error: the build sees no /sys/kernel/btf/vmlinux and the context has no bpf/vmlinux.h; see the top of the Dockerfile" >&2; \
      exit 1; \
    fi \
 && make -C bpf

# Node's own headers, so that node-gyp downloads nothing.
COPY native/ native/
RUN cd native && npx --no-install node-gyp configure build --nodedir="$(dirname "$(dirname "$(command -v node)")")"

COPY . .
# tsconfig.json builds the collector alone: tests, their support, benches and
# components' testing/ and testdata/ folders build into build/dev/ with
# tsconfig.test.json, never into dist/ or the image.
RUN npx --no-install tsc -p tsconfig.json \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
# The shared libraries the addon links (native/binding.gyp).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libbpf1 libdw1 libelf1 zlib1g \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/ebpf-collector
# package.json marks the project root, where the CLI finds build/bpf and the addon.
COPY --from=build /opt/ebpf-collector/package.json ./
COPY --from=build /opt/ebpf-collector/node_modules/ node_modules/
COPY --from=build /opt/ebpf-collector/dist/ dist/
COPY bin/ bin/
COPY --from=build /opt/ebpf-collector/build/bpf/ build/bpf/
COPY --from=build /opt/ebpf-collector/native/build/Release/ebpf_native.node native/build/Release/
# The OTLP exporters load their protobuf schema at run time.
COPY --from=build /opt/ebpf-collector/exporters/otlpcommon/proto/ exporters/otlpcommon/proto/
COPY pipeline.sidecar.yaml /etc/ebpf-collector/pipeline.yaml

# Root, for the capabilities the container is given (cap_add only reaches uid 0's
# effective set); docker-compose.yml and the DaemonSet drop every other one.
ENTRYPOINT ["bin/ebpf-collector"]
CMD ["run", "--config", "/etc/ebpf-collector/pipeline.yaml"]
EXPOSE 9464 7071
