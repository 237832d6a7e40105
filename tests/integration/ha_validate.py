#!/usr/bin/python3
"""Validates Home Assistant discovery payloads against ha_discovery.schema.json.

Reads "TOPIC<TAB>PAYLOAD" lines on stdin (an empty payload is a deletion and
is only counted). The component comes from the topic
(<prefix>/<component>/<node_id>/<object_id>/config). Prints the count per
component; exits 1 naming the first payload that fails.
"""
import json, os, sys

import jsonschema

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "ha_discovery.schema.json")) as f:
    doc = json.load(f)

def schema_for(component):
    s = json.loads(json.dumps(doc[component]))
    props = dict(doc["$defs"]["common"])
    props.update({k: v for k, v in s["properties"].items() if k != "$comment"})
    s["properties"] = props
    s["additionalProperties"] = False
    s["$defs"] = doc["$defs"]
    # a config says where its values come from and what the device is
    s.setdefault("allOf", []).append({"anyOf": [{"required": ["device"]}, {"required": ["dev"]}]})
    s["allOf"].append({"anyOf": [{"required": ["unique_id"]}, {"required": ["uniq_id"]}]})
    return s

counts, deleted = {}, 0
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line:
        continue
    topic, _, payload = line.partition("\t")
    parts = topic.split("/")
    if len(parts) != 5 or parts[-1] != "config":
        sys.exit(f"{topic}: not <prefix>/<component>/<node_id>/<object_id>/config")
    component = parts[1]
    if component not in ("sensor", "binary_sensor", "number"):
        sys.exit(f"{topic}: component {component} has no schema here")
    if not payload:
        deleted += 1
        continue
    try:
        jsonschema.validate(json.loads(payload), schema_for(component),
                            cls=jsonschema.Draft202012Validator)
    except ValueError as e:
        sys.exit(f"{topic}: not JSON: {e}")
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        sys.exit(f"{topic}: {where}: {e.message}")
    counts[component] = counts.get(component, 0) + 1
print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())), f"deleted={deleted}")
