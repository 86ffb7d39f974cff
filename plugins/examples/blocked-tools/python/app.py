"""blocked-tools in Python: denies every call of the tools its configuration lists
({"blocked_tools": ["gmail_send"]}) with code `tool_blocked`, like the Rust crate beside it.

Built by `make plugin-examples` with componentize-py against sdk/wit (world policy-plugin).
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

# Parsed configurations by id: the gateway hands a call only its configuration's id.
_configs = {}


def _configure(documents):
    blocked = []
    for document in documents:
        config = json.loads(document)
        if not isinstance(config, dict):
            raise ValueError("a configuration is a JSON object")
        unknown = sorted(set(config) - {"blocked_tools"})
        if unknown:
            raise ValueError(f"unknown field `{unknown[0]}`")
        tools = config.get("blocked_tools", [])
        if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
            raise ValueError("blocked_tools is a list of tool names")
        blocked.extend(tools)
    return blocked


class Policy(exports.Policy):
    def info(self):
        return types.PluginInfo(name="blocked-tools-py", version="1.0.0", stateless=True)

    def validate_config(self, document):
        try:
            _configure([document])
        except ValueError as e:
            raise Err([f"config: {e}"])

    def effective_config(self, documents):
        try:
            return json.dumps({"blocked_tools": _configure(documents)})
        except ValueError as e:
            raise Err([f"config: {e}"])

    def evaluate(self, call):
        key = call.config_id()
        if key not in _configs:
            try:
                _configs[key] = _configure(call.config())
            except ValueError:
                _configs[key] = None
        blocked = _configs[key]
        if blocked is None:
            return types.Decision_Deny(
                types.Denial(code="policy_misconfigured", reason="The policy for this agent is not valid")
            )
        tool = call.tool()
        if tool in blocked:
            return types.Decision_Deny(types.Denial(code="tool_blocked", reason=f"{tool} is blocked"))
        return types.Decision_Allow()

    def filter_response(self, call, response_json):
        return None
