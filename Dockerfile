# The one Lambda image: every function runs it with its own command (image_config.command in
# Terraform), e.g. handlers.check_rules.handler. Build single-architecture on a machine of that
# architecture (pip install runs during the build), without provenance attestations (Lambda rejects
# image indexes), and deploy by digest:
#   docker buildx build --platform linux/arm64 --provenance=false -t <repo>:<sha> --push .
# The base image is pinned by digest here, so every build of a commit starts from the same bytes;
# Dependabot proposes new digests (.github/dependabot.yml) and CI builds each.
FROM public.ecr.aws/lambda/python:3.12@sha256:0628ddc11919f85f4261517d356392dbbc6b3181568d87a376ae2e814464c230

# requirements.lock: requirements.txt resolved with every package's hashes (pip-compile, see its
# header); pip refuses anything whose hash is not in it.
COPY requirements.lock ${LAMBDA_TASK_ROOT}/
RUN pip install --no-cache-dir --disable-pip-version-check --require-hashes --no-deps \
      -r ${LAMBDA_TASK_ROOT}/requirements.lock --target ${LAMBDA_TASK_ROOT} \
 && rm ${LAMBDA_TASK_ROOT}/requirements.lock

# Only the handlers package: the emulator, the CLI, tests and tooling never enter the image.
COPY handlers/ ${LAMBDA_TASK_ROOT}/handlers/
# Bytecode compiled at build time: the image is read-only at run time, so without it every new
# execution environment would compile the handlers before its first invocation.
RUN python -m compileall -q ${LAMBDA_TASK_ROOT}/handlers

CMD ["handlers.normalize.handler"]
