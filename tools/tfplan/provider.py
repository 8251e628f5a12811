"""A provider that serves a committed schema over Terraform's plugin protocol 6, offline.

Why: Terraform core does the real checking — argument names, required arguments, types,
references, cycles, `for_each` keys known only at apply — as long as a provider answers with
the real schema. This one answers with tools/tfplan/schemas/<name>.json and plans the way a
provider does on create: configured values as given, unset computed attributes unknown.
"Apply" fills those with typed stand-ins, so a second plan can be checked for changes.
"""

from __future__ import annotations

import json
import os
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from tools.tfplan import values

HERE = Path(__file__).resolve().parent
NESTING = {"single": 1, "list": 2, "set": 3, "map": 4, "group": 5}
RPC_MESSAGES = {
    # RPC name -> the plugin.proto message holding its Request/Response
    "GetProviderSchema": "GetProviderSchema",
    "GetFunctions": "GetFunctions",
    "ValidateProviderConfig": "ValidateProviderConfig",
    "ValidateResourceConfig": "ValidateConfig",
    "ValidateDataResourceConfig": "ValidateConfig",
    "ValidateEphemeralResourceConfig": "ValidateConfig",
    "ConfigureProvider": "ConfigureProvider",
    "UpgradeResourceState": "UpgradeResourceState",
    "ReadResource": "ReadResource",
    "PlanResourceChange": "PlanResourceChange",
    "ApplyResourceChange": "ApplyResourceChange",
    "ImportResourceState": "ImportResourceState",
    "ReadDataSource": "ReadDataSource",
    "OpenEphemeralResource": "OpenEphemeralResource",
    "CloseEphemeralResource": "CloseEphemeralResource",
    "StopProvider": "StopProvider",
}


def load_protocol() -> Any:
    """The generated message classes for plugin.proto (compiled at run time by grpcio-tools)."""
    import sys

    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return grpc.protos("plugin.proto")


class Provider:
    """The RPC handlers for one provider's schema."""

    def __init__(self, schema: dict[str, Any], pb: Any) -> None:
        self.schema = schema
        self.pb = pb
        self.kinds = {
            "resource": schema["resource_schemas"],
            "data": schema["data_source_schemas"],
            "ephemeral": schema["ephemeral_resource_schemas"],
        }

    # --- schema -----------------------------------------------------------
    def _block(self, block: dict[str, Any]) -> Any:
        pb = self.pb
        return pb.Schema.Block(
            attributes=[
                pb.Schema.Attribute(
                    name=name, type=values.type_bytes(a["type"]), required=bool(a.get("required")),
                    optional=bool(a.get("optional")), computed=bool(a.get("computed")),
                    write_only=bool(a.get("write_only")))
                for name, a in sorted(block["attributes"].items())
            ],
            block_types=[
                pb.Schema.NestedBlock(
                    type_name=name, block=self._block(b["block"]), nesting=NESTING[b["nesting_mode"]],
                    min_items=b.get("min_items", 0), max_items=b.get("max_items", 0))
                for name, b in sorted(block["block_types"].items())
            ],
        )

    def _schema(self, entry: dict[str, Any]) -> Any:
        return self.pb.Schema(version=entry.get("version", 0), block=self._block(entry["block"]))

    def GetProviderSchema(self, request: Any, context: Any) -> Any:
        pb = self.pb
        return pb.GetProviderSchema.Response(
            provider=self._schema(self.schema["provider"]),
            resource_schemas={k: self._schema(v) for k, v in self.kinds["resource"].items()},
            data_source_schemas={k: self._schema(v) for k, v in self.kinds["data"].items()},
            ephemeral_resource_schemas={k: self._schema(v) for k, v in self.kinds["ephemeral"].items()},
            server_capabilities=pb.ServerCapabilities(plan_destroy=False, get_provider_schema_optional=False),
        )

    def GetFunctions(self, request: Any, context: Any) -> Any:
        return self.pb.GetFunctions.Response()

    # --- validation and configuration: Terraform core already checked names and types -------------
    def ValidateProviderConfig(self, request: Any, context: Any) -> Any:
        return self.pb.ValidateProviderConfig.Response()

    def ValidateResourceConfig(self, request: Any, context: Any) -> Any:
        return self.pb.ValidateConfig.Response()

    ValidateDataResourceConfig = ValidateResourceConfig
    ValidateEphemeralResourceConfig = ValidateResourceConfig

    def ConfigureProvider(self, request: Any, context: Any) -> Any:
        return self.pb.ConfigureProvider.Response()

    def StopProvider(self, request: Any, context: Any) -> Any:
        return self.pb.StopProvider.Response()

    # --- managed resources ----------------------------------------------------
    def _dynamic(self, value: Any) -> Any:
        return self.pb.DynamicValue(msgpack=values.encode(value))

    def UpgradeResourceState(self, request: Any, context: Any) -> Any:
        block = self.kinds["resource"][request.type_name]["block"]
        state = json.loads(request.raw_state.json) if request.raw_state.json else None
        return self.pb.UpgradeResourceState.Response(upgraded_state=self._dynamic(values.conform(block, state)))

    def ReadResource(self, request: Any, context: Any) -> Any:
        # Nothing exists outside the state here, so a refresh finds what the state says.
        return self.pb.ReadResource.Response(new_state=request.current_state, private=request.private)

    def _filled(self, kind: str, type_name: str, value: Any, fill: values.Fill) -> Any:
        """The value decoded, each attribute passed through `fill` along the type's schema, encoded again."""
        block = self.kinds[kind][type_name]["block"]
        return self._dynamic(values.fill_unset(block, values.decode(value.msgpack), fill))

    def PlanResourceChange(self, request: Any, context: Any) -> Any:
        planned = self._filled("resource", request.type_name, request.proposed_new_state, values.plan_fill)
        return self.pb.PlanResourceChange.Response(planned_state=planned, planned_private=request.prior_private)

    def ApplyResourceChange(self, request: Any, context: Any) -> Any:
        new_state = self._filled("resource", request.type_name, request.planned_state, values.known_fill)
        return self.pb.ApplyResourceChange.Response(new_state=new_state, private=request.planned_private)

    def ImportResourceState(self, request: Any, context: Any) -> Any:
        pb = self.pb
        return pb.ImportResourceState.Response(diagnostics=[pb.Diagnostic(
            severity=pb.Diagnostic.ERROR, summary="Import is not supported offline",
            detail=f"tools/tfplan cannot read {request.type_name} {request.id!r} from a cloud it cannot reach.")])

    # --- data sources and ephemeral resources --------------------------------------------
    def ReadDataSource(self, request: Any, context: Any) -> Any:
        state = self._filled("data", request.type_name, request.config, values.known_fill)
        return self.pb.ReadDataSource.Response(state=state)

    def OpenEphemeralResource(self, request: Any, context: Any) -> Any:
        result = self._filled("ephemeral", request.type_name, request.config, values.known_fill)
        return self.pb.OpenEphemeralResource.Response(result=result)

    def CloseEphemeralResource(self, request: Any, context: Any) -> Any:
        return self.pb.CloseEphemeralResource.Response()


def serve(schema_path: Path, socket_path: str, pb: Any) -> grpc.Server:
    """Start one provider's gRPC server on a unix socket (Terraform reattaches to it)."""
    provider = Provider(json.loads(schema_path.read_text()), pb)
    handlers = {
        rpc: grpc.unary_unary_rpc_method_handler(
            getattr(provider, rpc),
            request_deserializer=getattr(pb, message).Request.FromString,
            response_serializer=getattr(pb, message).Response.SerializeToString,
        )
        for rpc, message in RPC_MESSAGES.items()
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                         options=[("grpc.max_receive_message_length", 256 << 20),
                                  ("grpc.max_send_message_length", 256 << 20)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tfplugin6.Provider", handlers),))
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    server.add_insecure_port("unix:" + socket_path)
    server.start()
    return server
