"""What an operator watches: Prometheus metrics, structured logs with a request id per
request, and the redaction that keeps secrets out of both (docs/operations.md)."""
