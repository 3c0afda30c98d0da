-- Argo CD resource actions of tep.dev/TestPlan: which actions the UI offers for `obj`.
-- run-now is always available (a manual run works on a suspended plan too); suspend and
-- resume toggle spec.enabled, so only the one that changes something is enabled.
local actions = {}
actions["run-now"] = {["disabled"] = false}
actions["suspend"] = {["disabled"] = true}
actions["resume"] = {["disabled"] = true}

local enabled = true
if obj.spec ~= nil and obj.spec.enabled == false then
  enabled = false
end
if enabled then
  actions["suspend"]["disabled"] = false
else
  actions["resume"]["disabled"] = false
end
return actions
