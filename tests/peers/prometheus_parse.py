"""Reads Prometheus text exposition on stdin with prometheus_client's own
parser (the reference implementation's format reader) and prints every
sample as JSON: [{"name", "labels", "value"}]. A line the parser refuses
makes it exit non-zero with the parser's error."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append({"name": s.name, "labels": s.labels, "value": s.value})
json.dump(samples, sys.stdout)
