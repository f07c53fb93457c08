"""Checks answers against berth's OpenAPI document with
openapi-schema-validator (the OpenAPI 3.0 schema dialect).

    python openapi_check.py DOCUMENT ANSWERS

ANSWERS is a JSON list of {"method", "path", "status", "body"}; each body
is validated against the schema the document gives for that operation and
status. Prints the number checked; exits non-zero on the first mismatch.
"""

import json
import sys

from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4


def main() -> None:
    doc = json.load(open(sys.argv[1]))
    answers = json.load(open(sys.argv[2]))
    registry = Registry().with_resource("berth.json", Resource.from_contents(doc, default_specification=DRAFT4))
    checked = 0
    for a in answers:
        op = doc["paths"][a["path"]][a["method"].lower()]
        response = op["responses"].get(str(a["status"]), {})
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            continue
        # Resolve the document's own references from its root.
        wrapped = {"$ref": "berth.json#/paths/" + a["path"].replace("~", "~0").replace("/", "~1")
                   + "/" + a["method"].lower() + "/responses/" + str(a["status"])
                   + "/content/application~1json/schema"}
        OAS30Validator(wrapped, registry=registry).validate(a["body"])
        checked += 1
    print("checked", checked)


if __name__ == "__main__":
    main()
