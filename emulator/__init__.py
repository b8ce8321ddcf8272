"""The local emulator: an embedded AWS (moto + shims) and a webhook receiver. Never in the Lambda image."""
