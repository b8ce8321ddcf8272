"""coachflow's command line (``python -m cli``, through ``./build.sh``): normalize files, validate,
test and push rules, send payloads. Tooling: it imports the handlers' pure core, and never ships in
the Lambda image."""
