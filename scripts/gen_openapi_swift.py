#!/usr/bin/env python3
"""Embeds docs/openapi.yaml in the controller binary: writes
Sources/SwitchyardController/API/OpenAPIDocument.swift, one raw string literal holding the file
byte for byte (the controller serves it at GET /api/v1/openapi.yaml, from any installation
directory, as it serves the status page's files). Run it (or `make openapi`) after editing
docs/openapi.yaml and commit both; OpenAPITests fails while they differ."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "docs", "openapi.yaml")
TARGET = os.path.join(ROOT, "Sources", "SwitchyardController", "API", "OpenAPIDocument.swift")
DELIMITER = "##"


def render(text):
    if '"""' + DELIMITER in text or "\\" + DELIMITER in text:
        sys.exit(f"{SOURCE} contains the raw string delimiter {DELIMITER}: change DELIMITER")
    if not text.endswith("\n"):
        sys.exit(f"{SOURCE} must end with a newline")
    body = "".join(("        " + line if line.strip() else "") + "\n" for line in text[:-1].split("\n"))
    return (
        "// GENERATED from docs/openapi.yaml by scripts/gen_openapi_swift.py (make openapi): edit the\n"
        "// YAML, then regenerate. OpenAPITests checks that the two are the same, byte for byte.\n"
        "\n"
        "enum OpenAPIDocument {\n"
        "    /// docs/openapi.yaml\n"
        f"    static let yaml = {DELIMITER}\"\"\"\n"
        f"{body}"
        "\n"
        f"        \"\"\"{DELIMITER}\n"
        "}\n"
    )


def main():
    with open(SOURCE, encoding="utf-8") as f:
        text = f.read()
    out = render(text)
    check = "--check" in sys.argv[1:]
    current = open(TARGET, encoding="utf-8").read() if os.path.exists(TARGET) else None
    if check:
        if current != out:
            sys.exit(f"{TARGET} is not docs/openapi.yaml: run scripts/gen_openapi_swift.py")
        return
    if current != out:
        with open(TARGET, "w", encoding="utf-8") as f:
            f.write(out)
        print(f"wrote {os.path.relpath(TARGET, ROOT)}")


if __name__ == "__main__":
    main()
