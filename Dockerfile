# The one Lambda image: every function runs it with its own command (image_config.command in
# Terraform), e.g. handlers.check_rules.handler. Build single-architecture, without provenance
# attestations (Lambda rejects image indexes), and deploy by digest:
#   docker buildx build --platform linux/arm64 --provenance=false \
#     --build-arg BASE_IMAGE=public.ecr.aws/lambda/python:3.12@sha256:<digest> -t <repo>:<sha> --push .
# The release workflow resolves the base image's digest and passes it, so builds are reproducible.
ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.12
FROM ${BASE_IMAGE}

COPY requirements.txt constraints.txt ${LAMBDA_TASK_ROOT}/
RUN pip install --no-cache-dir --disable-pip-version-check \
      -r ${LAMBDA_TASK_ROOT}/requirements.txt -c ${LAMBDA_TASK_ROOT}/constraints.txt \
      --target ${LAMBDA_TASK_ROOT} \
 && rm ${LAMBDA_TASK_ROOT}/requirements.txt ${LAMBDA_TASK_ROOT}/constraints.txt

# Only the handlers package: the emulator, the CLI, tests and tooling never enter the image.
COPY handlers/ ${LAMBDA_TASK_ROOT}/handlers/
# Bytecode compiled at build time: the image is read-only at run time, so without it every new
# execution environment would compile the handlers before its first invocation.
RUN python -m compileall -q ${LAMBDA_TASK_ROOT}/handlers

CMD ["handlers.normalize.handler"]
