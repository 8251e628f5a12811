"""Extract provider schemas from the cdktf prebuilt bindings into tools/tfplan/schemas/.

Why: the real google provider cannot be downloaded on our machines, but its schema is public
in the PyPI wheels `cdktf-cdktf-provider-*`, generated from the provider itself. Each binding
ships its TypeScript source (inside the source map of `lib/<type>/index.js`), which states for
every argument `computed / optional / required`, whether it is a block, and its nesting.
We keep only the types terraform/ uses, in the format of `terraform providers schema -json`,
so `make test` needs neither the 50 MB wheel nor the network.

Regenerate after adding a resource type to terraform/:
    .venv/bin/python -m tools.tfplan.extract_schema            # downloads the pinned wheels
    .venv/bin/python -m tools.tfplan.extract_schema --wheel-dir DIR   # wheels already here
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from tools.tfplan.config_scan import used_types

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCHEMA_DIR = HERE / "schemas"

# provider -> (PyPI package of its cdktf bindings, pinned version, provider version it was generated from)
PROVIDERS: dict[str, tuple[str, str, str]] = {
    "google": ("cdktf-cdktf-provider-google", "16.12.1", "6.50.0"),
    "google-beta": ("cdktf-cdktf-provider-google-beta", "16.12.1", "6.50.0"),
    "archive": ("cdktf-cdktf-provider-archive", "11.0.1", "2.7.1"),
    "random": ("cdktf-cdktf-provider-random", "12.0.1", "3.7.2"),
    "time": ("cdktf-cdktf-provider-time", "11.0.1", "0.13.1"),
}

# cdktf has no ephemeral resources. The random provider's ephemeral random_password
# (random 3.7) takes the managed resource's arguments, without `keepers`, and has no `id`.
EPHEMERAL_FROM_RESOURCE: dict[str, tuple[str, set[str]]] = {
    "random_password": ("random_password", {"keepers", "id"}),
}

SECTION = re.compile(r"^  // (\w+) - computed: (true|false), optional: (true|false), required: (true|false)$", re.M)
SYNTH_ENTRY = re.compile(
    r'(\w+): \{\s*value: [^\n]*\n\s*isBlock: (true|false),\s*type: "(\w+)",\s*storageClassType: "(\w+)",'
)
SIMPLE_STORAGE = {
    ("simple", "string"): "string",
    ("simple", "number"): "number",
    ("simple", "boolean"): "bool",
    ("list", "stringList"): ["list", "string"],
    ("set", "stringList"): ["set", "string"],
    ("list", "numberList"): ["list", "number"],
    ("set", "numberList"): ["set", "number"],
    ("list", "booleanList"): ["list", "bool"],
    ("map", "stringMap"): ["map", "string"],
    ("map", "numberMap"): ["map", "number"],
    ("map", "booleanMap"): ["map", "bool"],
    ("map", "anyMap"): ["map", "dynamic"],
}
GETTER_TYPES = [
    (re.compile(r"Fn\.tolist\(this\.getListAttribute\("), ["set", "string"]),
    (re.compile(r"Fn\.tolist\(this\.getNumberListAttribute\("), ["set", "number"]),
    (re.compile(r"this\.getStringAttribute\("), "string"),
    (re.compile(r"this\.getNumberAttribute\("), "number"),
    (re.compile(r"this\.getBooleanAttribute\("), "bool"),
    (re.compile(r"this\.getListAttribute\("), ["list", "string"]),
    (re.compile(r"this\.getNumberListAttribute\("), ["list", "number"]),
    (re.compile(r"this\.getBooleanListAttribute\("), ["list", "bool"]),
    (re.compile(r"this\.getStringMapAttribute\(|new cdktf\.StringMap\("), ["map", "string"]),
    (re.compile(r"this\.getNumberMapAttribute\(|new cdktf\.NumberMap\("), ["map", "number"]),
    (re.compile(r"this\.getBooleanMapAttribute\(|new cdktf\.BooleanMap\("), ["map", "bool"]),
    (re.compile(r"this\.getAnyMapAttribute\(|new cdktf\.AnyMap\("), ["map", "dynamic"]),
    (re.compile(r"this\.interpolationForAttribute\("), "dynamic"),
]
DECLARED_TYPES = {
    "string": "string",
    "number": "number",
    "boolean | cdktf.IResolvable": "bool",
    "string[]": ["list", "string"],
    "number[]": ["list", "number"],
    "{ [key: string]: string }": ["map", "string"],
}


def with_next(items: list[re.Match[str]]) -> list[tuple[re.Match[str], re.Match[str] | None]]:
    """Each match with the one after it (None for the last): the text between them is its section."""
    return list(zip(items, [*items[1:], None], strict=False))


class Binding:
    """The TypeScript source of one cdktf binding (one resource, data source or the provider)."""

    def __init__(self, ts: str) -> None:
        self.ts = ts
        self.classes = self._split(r"^export class (\w+) ")
        self.hcl_functions = {
            name[0].upper() + name[1:]: body
            for name, body in self._split(r"^export function (\w+)ToHclTerraform\(").items()
        }

    def _split(self, pattern: str) -> dict[str, str]:
        heads = list(re.finditer(pattern, self.ts, re.M))
        out = {}
        for head, nxt in with_next(heads):
            end = nxt.start() if nxt else len(self.ts)
            stop = re.search(r"^export ", self.ts[head.end():end], re.M)
            out[head.group(1)] = self.ts[head.start(): head.end() + stop.start() if stop else end]
        return out

    def block(self, class_name: str, synth: str | None, with_blocks: bool = True) -> dict[str, Any]:
        """Schema block for a class (the top-level class or a nested OutputReference).

        The provider's own blocks (batching ...) are plain interfaces without an OutputReference
        class; nothing here configures them, so `with_blocks=False` leaves them out."""
        body = self.classes[class_name]
        entries = {m.group(1): m.groups()[1:] for m in SYNTH_ENTRY.finditer(synth or "")}
        attributes: dict[str, Any] = {}
        block_types: dict[str, Any] = {}
        sections = list(SECTION.finditer(body))
        for sec, nxt in with_next(sections):
            name = sec.group(1)
            computed, optional, required = (sec.group(i) == "true" for i in (2, 3, 4))
            text = body[sec.end(): nxt.start() if nxt else len(body)]
            nested = re.search(r"= new (\w+)\(this, \"" + re.escape(name) + r"\"(?:, (true|false))?\)", text)
            entry = entries.get(name)
            if entry and entry[0] == "true":
                if not with_blocks:
                    continue
                block_types[name] = self._nested_block(name, entry[1], entry[2], nested, required)
                continue
            if entry:
                kind = SIMPLE_STORAGE.get((entry[1], entry[2]))
                if kind is None:
                    raise ValueError(f"{class_name}.{name}: unknown storage {entry[1]}/{entry[2]}")
            else:
                kind = self._computed_type(class_name, name, text, nested)
            attr: dict[str, Any] = {"type": kind}
            for flag, on in (("required", required), ("optional", optional), ("computed", computed)):
                if on:
                    attr[flag] = True
            if name.endswith("_wo"):
                attr["write_only"] = True  # the provider's convention for write-only arguments
            attributes[name] = attr
        return {"attributes": attributes, "block_types": block_types}

    def _nested_block(self, name: str, nesting: str, storage: str, nested: re.Match[str] | None,
                      required: bool) -> dict[str, Any]:
        struct = storage[: -len("List")] if storage.endswith("List") else storage
        out: dict[str, Any] = {
            "nesting_mode": {"list": "list", "set": "set", "struct": "single"}[nesting],
            "block": self.block(struct + "OutputReference", self.hcl_functions.get(struct)),
        }
        single = nested is not None and nested.group(1).endswith("OutputReference")
        if out["nesting_mode"] != "single":
            if required:
                out["min_items"] = 1
            if single:
                out["max_items"] = 1
        return out

    def _computed_type(self, class_name: str, name: str, text: str, nested: re.Match[str] | None) -> Any:
        if nested and not nested.group(1).startswith("cdktf."):
            cls = nested.group(1)
            for suffix, collection in (("List", "set" if nested.group(2) == "true" else "list"),
                                       ("Map", "map"), ("OutputReference", "list")):
                if cls.endswith(suffix):
                    element = cls[: -len(suffix)] + "OutputReference"
                    attrs = self.block(element, None)["attributes"]
                    return [collection, ["object", {k: v["type"] for k, v in attrs.items()}]]
        for pattern, kind in GETTER_TYPES:
            if pattern.search(text):
                return kind
        declared = re.search(r"private _\w+\??: ([^;=]+?)( \| undefined)?;", text)
        if declared and declared.group(1).strip() in DECLARED_TYPES:
            return DECLARED_TYPES[declared.group(1).strip()]
        raise ValueError(f"{class_name}.{name}: cannot tell the type")


def binding_source(tar: tarfile.TarFile, lib_dir: str) -> str:
    """The TypeScript source of lib/<lib_dir>/index.js, from its inline source map."""
    member = tar.extractfile(f"package/lib/{lib_dir}/index.js")
    if member is None:
        raise FileNotFoundError(lib_dir)
    js = member.read().decode()
    m = re.search(r"sourceMappingURL=data:application/json;base64,(\S+)", js)
    if not m:
        raise ValueError(f"{lib_dir}: no inline source map")
    return str(json.loads(base64.b64decode(m.group(1)))["sourcesContent"][0])


def top_class(binding: Binding, kind: str) -> tuple[str, str]:
    """(class name, terraform type name) of the binding's resource / data source / provider class."""
    for name, body in binding.classes.items():
        if re.search(rf"extends cdktf\.Terraform{kind}\b", body):
            m = re.search(r'tfResourceType = "(\w+)"', binding.ts[binding.ts.index(body):])
            return name, m.group(1) if m else ""
    raise ValueError(f"no Terraform{kind} class")


def provider_schema(provider: str, wheel: Path, types: dict[str, set[str]]) -> dict[str, Any]:
    """`terraform providers schema -json` shape for one provider, limited to `types`."""
    with zipfile.ZipFile(wheel) as zf:
        jsii = next(n for n in zf.namelist() if n.endswith(".jsii.tgz"))
        archive = zf.read(jsii)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return _schema_from_tar(provider, tar, types)


def _schema_from_tar(provider: str, tar: tarfile.TarFile, types: dict[str, set[str]]) -> dict[str, Any]:
    dirs = {Path(m.name).parts[2] for m in tar.getmembers() if m.name.startswith("package/lib/")
            and m.name.endswith("/index.js") and len(Path(m.name).parts) == 4}

    def top(lib_dir: str, kind: str) -> tuple[dict[str, Any], str]:
        b = Binding(binding_source(tar, lib_dir))
        cls, tf_type = top_class(b, kind)
        synth = re.search(r"protected synthesizeHclAttributes\(\).*?\n  }\n", b.classes[cls], re.S)
        block = b.block(cls, synth.group(0) if synth else None, with_blocks=kind != "Provider")
        return {"version": 0, "block": block}, tf_type

    out: dict[str, Any] = {"provider": top("provider", "Provider")[0], "resource_schemas": {},
                           "data_source_schemas": {}, "ephemeral_resource_schemas": {}}
    for kind, key in (("resource", "resource_schemas"), ("data", "data_source_schemas")):
        for tf_type in sorted(types.get(kind, set())):
            # lib/ names: resources drop their own provider's prefix (google_pubsub_subscription ->
            # pubsub-subscription; google-beta keeps google-project-service-identity); data sources keep it
            own_prefix = provider.replace("-", "_") + "_"
            lib_dir = ("data_" + tf_type if kind == "data" else tf_type.removeprefix(own_prefix)).replace("_", "-")
            if lib_dir not in dirs:
                raise FileNotFoundError(f"{tf_type}: no binding lib/{lib_dir}")
            schema, found = top(lib_dir, "Resource" if kind == "resource" else "DataSource")
            if found != tf_type:
                raise ValueError(f"lib/{lib_dir} describes {found}, not {tf_type}")
            out[key][tf_type] = schema
    for tf_type in sorted(types.get("ephemeral", set())):
        source, dropped = EPHEMERAL_FROM_RESOURCE[tf_type]
        schema, _ = top(source.split("_", 1)[1].replace("_", "-"), "Resource")
        for name in dropped:
            schema["block"]["attributes"].pop(name, None)
        out["ephemeral_resource_schemas"][tf_type] = schema
    return out


def download(package: str, version: str, dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "-d", str(dest), f"{package}=={version}"], check=True)
    return next(dest.glob(package.replace("-", "_") + f"-{version}-*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terraform-dir", type=Path, default=REPO / "terraform")
    parser.add_argument("--wheel-dir", type=Path, help="where the wheels are (else: pip download into a temp dir)")
    args = parser.parse_args(argv)
    used = used_types(args.terraform_dir)
    SCHEMA_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for provider, types in sorted(used.items()):
            package, version, provider_version = PROVIDERS[provider]
            wheel_dir = args.wheel_dir or Path(tmp)
            found = list(wheel_dir.glob(package.replace("-", "_") + f"-{version}-*.whl"))
            wheel = found[0] if found else download(package, version, Path(tmp))
            schema = provider_schema(provider, wheel, types)
            schema["_generated_from"] = {"package": package, "package_version": version,
                                         "provider": f"hashicorp/{provider}", "provider_version": provider_version}
            path = SCHEMA_DIR / f"{provider}.json"
            path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
            count = sum(len(schema[k]) for k in ("resource_schemas", "data_source_schemas",
                                                   "ephemeral_resource_schemas"))
            print(f"{path.relative_to(REPO)}: hashicorp/{provider} {provider_version}, {count} types")
    return 0


if __name__ == "__main__":
    sys.exit(main())
