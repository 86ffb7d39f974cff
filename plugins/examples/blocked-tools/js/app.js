// blocked-tools in JavaScript: denies every call of the tools its configuration lists
// ({"blocked_tools": ["gmail_send"]}) with code `tool_blocked`, like the Rust crate and the
// Python module beside it.
//
// Built by `make plugin-examples` with componentize-js against sdk/wit (world policy-plugin).
// An export's `result` error is what the function throws.

// Parsed configurations by id: the gateway hands a call only its configuration's id.
const configs = new Map();

function configure(documents) {
  const blocked = [];
  for (const document of documents) {
    const config = JSON.parse(document);
    if (config === null || typeof config !== "object" || Array.isArray(config)) {
      throw new Error("a configuration is a JSON object");
    }
    const unknown = Object.keys(config).filter((key) => key !== "blocked_tools").sort();
    if (unknown.length > 0) {
      throw new Error(`unknown field \`${unknown[0]}\``);
    }
    const tools = config.blocked_tools ?? [];
    if (!Array.isArray(tools) || !tools.every((tool) => typeof tool === "string")) {
      throw new Error("blocked_tools is a list of tool names");
    }
    blocked.push(...tools);
  }
  return blocked;
}

/** Runs `configure`, turning its failure into the contract's list of problems. */
function configured(documents) {
  try {
    return configure(documents);
  } catch (e) {
    throw [`config: ${e.message}`];
  }
}

export const policy = {
  info() {
    return { name: "blocked-tools-js", version: "1.0.0", stateless: true };
  },

  validateConfig(document) {
    configured([document]);
  },

  effectiveConfig(documents) {
    return JSON.stringify({ blocked_tools: configured(documents) });
  },

  evaluate(call) {
    const key = call.configId();
    if (!configs.has(key)) {
      let blocked = null;
      try {
        blocked = configure(call.config());
      } catch {
        blocked = null;
      }
      configs.set(key, blocked);
    }
    const blocked = configs.get(key);
    if (blocked === null) {
      return {
        tag: "deny",
        val: { code: "policy_misconfigured", reason: "The policy for this agent is not valid" },
      };
    }
    const tool = call.tool();
    if (blocked.includes(tool)) {
      return { tag: "deny", val: { code: "tool_blocked", reason: `${tool} is blocked` } };
    }
    return { tag: "allow" };
  },

  filterResponse(_call, _responseJson) {
    return undefined;
  },
};
