# The grading runner for GPU machines: CUDA PyTorch, bubblewrap (the students' sandbox) and this kit.
# It holds the staff's kit (graders, reference solutions): keep the image private (your registry, not a public one).
#
#   docker build -t coursekit-runner .                                  # from the kit's checkout
#   docker run --rm --gpus all --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#       -v "$PWD/submissions:/submissions:ro" -v "$PWD/grades:/grades" coursekit-runner \
#       grade /submissions -o /grades --jobs 4
#   docker run --rm --gpus all --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#       --entrypoint python coursekit-runner benchmarks/gpu_check.py      # the device check (README, GPU grading)
#
# seccomp/apparmor=unconfined: bubblewrap needs unprivileged user namespaces, which Docker's default profiles refuse;
# the students' code still runs in bubblewrap's sandbox inside the container (`coursekit grade` refuses to grade
# without it). Ubuntu 24.04: bubblewrap 0.9 (the sandbox needs 0.8 or later, for --disable-userns).
FROM ubuntu:24.04

ARG TORCH="torch==2.5.1"
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 MPLBACKEND=Agg PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv \
 && pip install "$TORCH"
# PyPI's Linux build of torch carries CUDA's libraries; the host gives the driver (docker --gpus / nvidia-container-toolkit).

WORKDIR /opt/coursekit
COPY pyproject.toml README.md environment.yml ./
COPY coursekit ./coursekit
COPY autograder ./autograder
COPY solutions ./solutions
COPY assignments ./assignments
COPY data ./data
COPY benchmarks ./benchmarks
RUN pip install -e /opt/coursekit \
 && chmod -R o+rX /opt/coursekit /opt/venv \
 && bwrap --version && coursekit --help > /dev/null

ENTRYPOINT ["coursekit"]
CMD ["grade", "/submissions", "-o", "/grades", "--jobs", "2"]
