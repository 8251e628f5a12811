"""tools/tfplan: the schema read from a small binding written the way cdktf writes them."""

from __future__ import annotations

from tools.tfplan import values
from tools.tfplan.extract_schema import Binding, top_class

BINDING = '''
export interface ThingConfig extends cdktf.TerraformMetaArguments {
  readonly name: string;
}
export interface ThingPushConfig {
  readonly pushEndpoint: string;
}
export function thingPushConfigToHclTerraform(struct?: ThingPushConfig): any {
  const attrs = {
    push_endpoint: {
      value: cdktf.stringToHclTerraform(struct!.pushEndpoint),
      isBlock: false,
      type: "simple",
      storageClassType: "string",
    },
  };
}
export class ThingPushConfigOutputReference extends cdktf.ComplexObject {
  // push_endpoint - computed: false, optional: false, required: true
  private _pushEndpoint?: string;
  public get pushEndpoint() {
    return this.getStringAttribute('push_endpoint');
  }
}
export class ThingIpAddressOutputReference extends cdktf.ComplexObject {
  // ip_address - computed: true, optional: false, required: false
  public get ipAddress() {
    return this.getStringAttribute('ip_address');
  }
}
export class ThingIpAddressList extends cdktf.ComplexList {
}
export class Thing extends cdktf.TerraformResource {
  public static readonly tfResourceType = "google_thing";
  // effective_labels - computed: true, optional: false, required: false
  private _effectiveLabels = new cdktf.StringMap(this, "effective_labels");
  public get effectiveLabels() {
    return this._effectiveLabels;
  }
  // ip_address - computed: true, optional: false, required: false
  private _ipAddress = new ThingIpAddressList(this, "ip_address", false);
  // members - computed: false, optional: true, required: false
  private _members?: string[];
  public get members() {
    return cdktf.Fn.tolist(this.getListAttribute('members'));
  }
  // name - computed: false, optional: false, required: true
  private _name?: string;
  public get name() {
    return this.getStringAttribute('name');
  }
  // retries - computed: true, optional: true, required: false
  private _retries?: number;
  public get retries() {
    return this.getNumberAttribute('retries');
  }
  // secret_wo - computed: false, optional: true, required: false
  private _secretWo?: string;
  public get secretWo() {
    return this.getStringAttribute('secret_wo');
  }
  // push_config - computed: false, optional: true, required: false
  private _pushConfig = new ThingPushConfigOutputReference(this, "push_config");
  protected synthesizeHclAttributes(): { [name: string]: any } {
    const attrs = {
      members: {
        value: cdktf.listMapperHcl(cdktf.stringToHclTerraform, false)(this._members),
        isBlock: false,
        type: "set",
        storageClassType: "stringList",
      },
      name: {
        value: cdktf.stringToHclTerraform(this._name),
        isBlock: false,
        type: "simple",
        storageClassType: "string",
      },
      retries: {
        value: cdktf.numberToHclTerraform(this._retries),
        isBlock: false,
        type: "simple",
        storageClassType: "number",
      },
      secret_wo: {
        value: cdktf.stringToHclTerraform(this._secretWo),
        isBlock: false,
        type: "simple",
        storageClassType: "string",
      },
      push_config: {
        value: thingPushConfigToHclTerraform(this._pushConfig.internalValue),
        isBlock: true,
        type: "list",
        storageClassType: "ThingPushConfigList",
      },
    };
  }
}
'''

EXPECTED = {
    "attributes": {
        "effective_labels": {"type": ["map", "string"], "computed": True},
        "ip_address": {"type": ["list", ["object", {"ip_address": "string"}]], "computed": True},
        "members": {"type": ["set", "string"], "optional": True},
        "name": {"type": "string", "required": True},
        "retries": {"type": "number", "optional": True, "computed": True},
        "secret_wo": {"type": "string", "optional": True, "write_only": True},
    },
    "block_types": {
        "push_config": {
            "nesting_mode": "list",
            "max_items": 1,
            "block": {"attributes": {"push_endpoint": {"type": "string", "required": True}}, "block_types": {}},
        },
    },
}


def test_a_binding_becomes_a_terraform_schema_block() -> None:
    binding = Binding(BINDING)
    cls, tf_type = top_class(binding, "Resource")
    synth = binding.classes[cls][binding.classes[cls].index("protected synthesizeHclAttributes"):]
    assert (cls, tf_type) == ("Thing", "google_thing")
    assert binding.block(cls, synth) == EXPECTED


def test_a_plan_leaves_configured_values_and_makes_unset_computed_ones_unknown() -> None:
    config = {"name": "t", "members": None, "retries": None, "secret_wo": "s3cr3t", "effective_labels": None,
              "ip_address": None, "push_config": [{"push_endpoint": "https://x"}]}
    planned = values.fill_unset(EXPECTED, config, values.plan_fill)
    assert planned["name"] == "t" and planned["members"] is None and planned["secret_wo"] is None
    assert planned["retries"] is values.UNKNOWN and planned["ip_address"] is values.UNKNOWN
    assert values.decode(values.encode(planned)) == planned  # unknown survives the wire

    applied = values.fill_unset(EXPECTED, planned, values.known_fill)
    assert applied["retries"] == 0 and applied["ip_address"] == [] and applied["effective_labels"] == {}
